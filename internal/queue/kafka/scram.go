package kafka

import (
	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

var (
	sha256Hash = scram.SHA256
	sha512Hash = scram.SHA512
)

// scramClient adapts an xdg-go/scram conversation to sarama.SCRAMClient;
// sarama implements SASL/SCRAM framing but leaves the SCRAM exchange to a
// library.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

var _ sarama.SCRAMClient = (*scramClient)(nil)

func newSCRAMClient(hash scram.HashGeneratorFcn) func() sarama.SCRAMClient {
	return func() sarama.SCRAMClient { return &scramClient{hash: hash} }
}

func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = client.NewConversation()
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

func (c *scramClient) Done() bool { return c.conv.Done() }
