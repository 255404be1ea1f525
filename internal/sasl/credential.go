package sasl

// SCRAM credentials: what the user store keeps per user and mechanism, as
// Kafka keeps it (KIP-84, KIP-554): salt, iteration count, StoredKey and
// ServerKey, never the password. PLAIN verifies against the same records.
//
// Password bytes: Kafka hashes the password's UTF-8 bytes as typed (its
// ScramFormatter.normalize does no SASLprep), and so do the Java client,
// librdkafka and franz-go; sarama and kafka-go (through xdg-go/scram)
// SASLprep it first, as RFC 5802 asks. The two agree exactly when SASLprep
// leaves the password unchanged, so NewScramCredential refuses a password
// that SASLprep would change: every client then derives the same keys.

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"

	"github.com/xdg-go/stringprep"
)

// Kafka's bounds on a SCRAM credential's iteration count (ScramMechanism):
// a credential outside them is refused when stored and fails when used.
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// DefaultScramIterations is the count Kafka's tools use for a new
// credential (kafka-configs, the Admin client).
const DefaultScramIterations = 4096

// Credentials is the user store behind PLAIN and SCRAM (the metadata store
// implements it). Scram returns the user's credential for one SCRAM
// mechanism; ok is false when the user has none. An error means the store
// could not answer: the exchange fails without saying whether the user
// exists.
type Credentials interface {
	Scram(ctx context.Context, user, mechanism string) (cred ScramCredential, ok bool, err error)
}

// ScramCredential is one user's credential for one SCRAM mechanism.
type ScramCredential struct {
	Mechanism  string // ScramSHA256 or ScramSHA512
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// NewScramCredential derives a credential from a password with a fresh
// random salt. iterations must be within Kafka's bounds (4096 to 16384); 0
// means DefaultScramIterations. The password must be non-empty valid UTF-8
// that SASLprep (RFC 4013) leaves unchanged (see the file comment).
func NewScramCredential(mechanism, password string, iterations int) (ScramCredential, error) {
	if iterations == 0 {
		iterations = DefaultScramIterations
	}
	if err := checkScram(mechanism, iterations); err != nil {
		return ScramCredential{}, err
	}
	if password == "" {
		return ScramCredential{}, errors.New("sasl: empty password")
	}
	prepped, err := stringprep.SASLprep.Prepare(password)
	if err != nil {
		return ScramCredential{}, fmt.Errorf("sasl: password refused by SASLprep (RFC 4013): %w", err)
	}
	if prepped != password {
		return ScramCredential{}, errors.New("sasl: password is not in SASLprep (RFC 4013) form, so Kafka clients " +
			"that hash it as typed and those that SASLprep it would disagree; choose another")
	}
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		return ScramCredential{}, err
	}
	salted, err := saltedPassword(mechanism, password, salt, iterations)
	if err != nil {
		return ScramCredential{}, err
	}
	return ScramCredentialFromSalted(mechanism, salt, salted, iterations)
}

// ScramCredentialFromSalted builds a credential from a salted password, as
// AlterUserScramCredentials (KIP-554) sends it: the client derived it, the
// broker never sees the password. Kafka refuses (UNACCEPTABLE_CREDENTIAL)
// an empty salt or salted password and an iteration count outside its
// bounds; so does this.
func ScramCredentialFromSalted(mechanism string, salt, salted []byte, iterations int) (ScramCredential, error) {
	if err := checkScram(mechanism, iterations); err != nil {
		return ScramCredential{}, err
	}
	if len(salt) == 0 {
		return ScramCredential{}, errors.New("sasl: empty salt")
	}
	if len(salted) == 0 {
		return ScramCredential{}, errors.New("sasl: empty salted password")
	}
	h := scramHash(mechanism)
	clientKey := hmacSum(h, salted, "Client Key")
	storedKey := h()
	storedKey.Write(clientKey)
	return ScramCredential{
		Mechanism:  mechanism,
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  storedKey.Sum(nil),
		ServerKey:  hmacSum(h, salted, "Server Key"),
	}, nil
}

// Validate reports whether c can be used: a known mechanism, iterations
// within bounds, a salt, and keys of the hash's size.
func (c ScramCredential) Validate() error {
	if err := checkScram(c.Mechanism, c.Iterations); err != nil {
		return err
	}
	if len(c.Salt) == 0 {
		return errors.New("sasl: credential without salt")
	}
	size := scramHash(c.Mechanism)().Size()
	if len(c.StoredKey) != size || len(c.ServerKey) != size {
		return fmt.Errorf("sasl: %s credential keys are not %d bytes", c.Mechanism, size)
	}
	return nil
}

func checkScram(mechanism string, iterations int) error {
	if scramHash(mechanism) == nil {
		return fmt.Errorf("sasl: %q is not a SCRAM mechanism (%s, %s)", mechanism, ScramSHA256, ScramSHA512)
	}
	if iterations < MinScramIterations || iterations > MaxScramIterations {
		return fmt.Errorf("sasl: %d iterations is outside Kafka's bounds [%d, %d]", iterations, MinScramIterations, MaxScramIterations)
	}
	return nil
}

// scramHash is the mechanism's hash, nil for anything but SCRAM-SHA-256/512.
func scramHash(mechanism string) func() hash.Hash {
	switch mechanism {
	case ScramSHA256:
		return sha256.New
	case ScramSHA512:
		return sha512.New
	}
	return nil
}

// saltedPassword is Hi(password, salt, i) of RFC 5802: PBKDF2 with the
// mechanism's HMAC, as long as the hash.
func saltedPassword(mechanism, password string, salt []byte, iterations int) ([]byte, error) {
	h := scramHash(mechanism)
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

func hmacSum(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// decoys makes up a credential for a user who has none, so that an unknown
// user goes through the same steps, with the same timing, as a wrong
// password (RFC 5802 section 9 recommends it; Kafka does not do it and
// fails SCRAM at the first message). The salt is keyed by a secret so that
// it is stable per user: see PasswordOptions.DecoySecret.
type decoys struct {
	secret     []byte
	iterations int
}

func newDecoys(opts PasswordOptions) (decoys, error) {
	d := decoys{secret: opts.DecoySecret, iterations: opts.DecoyIterations}
	if d.iterations == 0 {
		d.iterations = DefaultScramIterations
	}
	if d.iterations < MinScramIterations || d.iterations > MaxScramIterations {
		return decoys{}, fmt.Errorf("sasl: decoy iterations %d outside [%d, %d]", d.iterations, MinScramIterations, MaxScramIterations)
	}
	if len(d.secret) == 0 {
		d.secret = make([]byte, 32)
		if _, err := rand.Read(d.secret); err != nil {
			return decoys{}, err
		}
	}
	return d, nil
}

// credential is the decoy for user: a salt like a real one, and keys that
// no proof matches (they are not derived from any password).
func (d decoys) credential(mechanism, user string) ScramCredential {
	h := scramHash(mechanism)
	label := mechanism + "\x00" + user
	return ScramCredential{
		Mechanism:  mechanism,
		Salt:       hmacSum(sha256.New, d.secret, "salt\x00"+label)[:24],
		Iterations: d.iterations,
		StoredKey:  hmacSum(h, d.secret, "stored\x00"+label),
		ServerKey:  hmacSum(h, d.secret, "server\x00"+label),
	}
}

// PasswordOptions tune PLAIN and SCRAM. The zero value is usable.
type PasswordOptions struct {
	// DecoySecret keys the made-up salt a SCRAM client sees for a user that
	// does not exist. It should be a secret shared by all brokers of the
	// cluster and kept across restarts: with the default (random per
	// process), a client that asks two brokers, or one broker twice across
	// a restart, for the same user's salt can tell a made-up user (salt
	// differs) from a real one (salt stays).
	DecoySecret []byte
	// DecoyIterations is the iteration count shown and spent for a user
	// that does not exist; make it the count most users' credentials have.
	// Default DefaultScramIterations.
	DecoyIterations int
}

// CredentialMap is Credentials held in memory, by user then mechanism: for
// tests and static configuration. Not safe to change while in use.
type CredentialMap map[string]map[string]ScramCredential

// Scram implements Credentials.
func (m CredentialMap) Scram(_ context.Context, user, mechanism string) (ScramCredential, bool, error) {
	c, ok := m[user][mechanism]
	return c, ok, nil
}

// Add derives and stores user's credential for mechanism from a password.
func (m CredentialMap) Add(user, mechanism, password string, iterations int) error {
	c, err := NewScramCredential(mechanism, password, iterations)
	if err != nil {
		return err
	}
	if m[user] == nil {
		m[user] = make(map[string]ScramCredential)
	}
	m[user][mechanism] = c
	return nil
}
