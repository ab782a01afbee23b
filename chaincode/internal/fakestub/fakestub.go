// Package fakestub is an in-memory ledger and chaincode stub for the unit
// tests of the synthreg contracts.
//
// Who calls: the _test.go files of ganledger and keyvault, through
// Ledger.Invoke, which runs the real contract-api chaincode (argument
// conversion, cid parsing of the creator certificate, error mapping) against
// this stub and commits the write set only when the transaction succeeds.
// Where data lives: maps in Ledger (public state, one map per private
// collection); a transaction reads only committed data, like a Fabric peer.
//
// It mirrors two peer rules that chaincode must not rely on being absent:
// GetPrivateData on a collection whose members exclude the creator's MSP fails
// (memberOnlyRead), and only the last SetEvent of a transaction is kept.
// Ledger.Block endorses several transactions against the same committed state
// and then validates them in block order like a Fabric committer: a
// transaction whose point reads (key versions) or range reads (keys and
// versions in the range) changed because of an earlier valid transaction of
// the block is marked MVCC_READ_CONFLICT / PHANTOM_READ_CONFLICT and its
// writes and event are dropped.
// It proves contract logic only; endorsement policies, collection
// dissemination and privacy are proven by the integration tests on the real
// network, never here.
package fakestub

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-protos-go-apiv2/ledger/queryresult"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Event is a chaincode event of a committed transaction.
type Event struct {
	TxID    string
	Name    string
	Payload []byte
}

// Result is the outcome of one Invoke.
type Result struct {
	TxID    string
	Status  int32
	Payload []byte
	Message string
	Event   *Event // event set by the transaction (nil when none)
	// Invalid is the committer's validation code when a successfully
	// endorsed transaction was invalidated in a Block ("" = valid).
	Invalid string
}

// Validation codes set by Block (the names of Fabric's TxValidationCode).
const (
	MVCCReadConflict    = "MVCC_READ_CONFLICT"
	PhantomReadConflict = "PHANTOM_READ_CONFLICT"
)

// OK reports a successful (committed) transaction.
func (r Result) OK() bool { return r.Status == shim.OK && r.Invalid == "" }

// Ledger is the committed world state shared by successive transactions.
type Ledger struct {
	State   map[string][]byte
	Private map[string]map[string][]byte
	// Validation holds each public key's committed key-level endorsement
	// policy (SetStateValidationParameter); nothing here enforces it.
	Validation map[string][]byte
	Events     []Event
	// Member decides collection membership for memberOnlyRead; default:
	// collection "shares_<MSP>" has the single member <MSP>.
	Member  func(collection, mspID string) bool
	Channel string
	now     time.Time
	txSeq   int
	// version of each public key: bumped by every committed write, like the
	// (block, tx) height Fabric keeps per key.
	version map[string]uint64
	height  uint64
}

// Call is one transaction of a Block.
type Call struct {
	Chaincode shim.Chaincode
	ID        Identity
	Transient map[string][]byte
	Fn        string
	Args      []string
}

// NewLedger returns an empty ledger for channel with a fixed start time.
func NewLedger(channel string) *Ledger {
	return &Ledger{
		State:      map[string][]byte{},
		Private:    map[string]map[string][]byte{},
		Validation: map[string][]byte{},
		Member: func(collection, mspID string) bool {
			return collection == "shares_"+mspID
		},
		Channel: channel,
		now:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		version: map[string]uint64{},
	}
}

// Advance moves the ledger clock: the next transaction's timestamp is the
// previous one plus d plus the usual one second.
func (l *Ledger) Advance(d time.Duration) { l.now = l.now.Add(d) }

// Now returns the timestamp of the last transaction.
func (l *Ledger) Now() time.Time { return l.now }

// Invoke runs fn(args...) on cc as id with the transient map (may be nil),
// and commits the write set and event on success.
func (l *Ledger) Invoke(cc shim.Chaincode, id Identity, transient map[string][]byte, fn string, args ...string) Result {
	stub, res := l.endorse(Call{Chaincode: cc, ID: id, Transient: transient, Fn: fn, Args: args})
	if res.OK() {
		stub.commit()
	}
	return res
}

// Block endorses every call against the current committed state (as if the
// clients sent them concurrently), then validates and commits them in order:
// a call whose reads no longer hold after the earlier valid calls of the
// block gets Result.Invalid set and changes nothing.
func (l *Ledger) Block(calls ...Call) []Result {
	stubs := make([]*Stub, len(calls))
	results := make([]Result, len(calls))
	for i, c := range calls {
		stubs[i], results[i] = l.endorse(c)
	}
	for i, s := range stubs {
		if results[i].Status != shim.OK {
			continue
		}
		if code := s.validate(); code != "" {
			results[i].Invalid = code
			continue
		}
		s.commit()
	}
	return results
}

func (l *Ledger) endorse(c Call) (*Stub, Result) {
	cc, id, transient, fn, args := c.Chaincode, c.ID, c.Transient, c.Fn, c.Args
	l.txSeq++
	l.now = l.now.Add(time.Second)
	stub := &Stub{
		ledger:     l,
		creator:    id.Creator,
		creatorMSP: id.MSPID,
		transient:  transient,
		txID:       fmt.Sprintf("tx%04d", l.txSeq),
		ts:         timestamppb.New(l.now),
		writes:     map[string][]byte{},
		pwrites:    map[string]map[string][]byte{},
		vwrites:    map[string][]byte{},
		reads:      map[string]uint64{},
	}
	stub.args = append(stub.args, []byte(fn))
	for _, a := range args {
		stub.args = append(stub.args, []byte(a))
	}
	resp := cc.Invoke(stub)
	return stub, Result{TxID: stub.txID, Status: resp.GetStatus(), Payload: resp.GetPayload(), Message: resp.GetMessage(), Event: stub.event}
}

// Stub implements the parts of shim.ChaincodeStubInterface the contracts use;
// any other method panics through the nil embedded interface.
type Stub struct {
	shim.ChaincodeStubInterface

	ledger     *Ledger
	creator    []byte
	creatorMSP string
	transient  map[string][]byte
	args       [][]byte
	txID       string
	ts         *timestamppb.Timestamp
	writes     map[string][]byte
	pwrites    map[string]map[string][]byte
	vwrites    map[string][]byte
	event      *Event
	reads      map[string]uint64 // key -> version read (0 = absent)
	ranges     []rangeRead
}

// rangeRead is a recorded range query: the prefix and what it returned.
type rangeRead struct {
	prefix string
	keys   []string
	vers   []uint64
}

// validate re-checks the read set against the committed state like the
// peer's committer; it returns "" when every read still holds.
func (s *Stub) validate() string {
	for k, v := range s.reads {
		if s.ledger.version[k] != v {
			return MVCCReadConflict
		}
	}
	for _, rr := range s.ranges {
		keys := s.ledger.keysWithPrefix(rr.prefix)
		if len(keys) != len(rr.keys) {
			return PhantomReadConflict
		}
		for i, k := range keys {
			if k != rr.keys[i] || s.ledger.version[k] != rr.vers[i] {
				return PhantomReadConflict
			}
		}
	}
	return ""
}

func (l *Ledger) keysWithPrefix(prefix string) []string {
	var keys []string
	for k := range l.State {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func (s *Stub) commit() {
	s.ledger.height++
	for k, v := range s.writes {
		s.ledger.State[k] = v
		s.ledger.version[k] = s.ledger.height
	}
	for k, v := range s.vwrites {
		s.ledger.Validation[k] = v
		s.ledger.version[k] = s.ledger.height
	}
	for c, kv := range s.pwrites {
		if s.ledger.Private[c] == nil {
			s.ledger.Private[c] = map[string][]byte{}
		}
		for k, v := range kv {
			s.ledger.Private[c][k] = v
		}
	}
	if s.event != nil {
		s.ledger.Events = append(s.ledger.Events, *s.event)
	}
}

// GetArgs implements the stub.
func (s *Stub) GetArgs() [][]byte { return s.args }

// GetStringArgs implements the stub.
func (s *Stub) GetStringArgs() []string {
	out := make([]string, len(s.args))
	for i, a := range s.args {
		out[i] = string(a)
	}
	return out
}

// GetFunctionAndParameters implements the stub.
func (s *Stub) GetFunctionAndParameters() (string, []string) {
	a := s.GetStringArgs()
	if len(a) == 0 {
		return "", nil
	}
	return a[0], a[1:]
}

// GetTxID implements the stub.
func (s *Stub) GetTxID() string { return s.txID }

// GetChannelID implements the stub.
func (s *Stub) GetChannelID() string { return s.ledger.Channel }

// GetCreator implements the stub.
func (s *Stub) GetCreator() ([]byte, error) { return s.creator, nil }

// GetTransient implements the stub.
func (s *Stub) GetTransient() (map[string][]byte, error) { return s.transient, nil }

// GetTxTimestamp implements the stub.
func (s *Stub) GetTxTimestamp() (*timestamppb.Timestamp, error) { return s.ts, nil }

// SetEvent implements the stub: the last call wins, like the peer's shim.
func (s *Stub) SetEvent(name string, payload []byte) error {
	if name == "" {
		return errors.New("event name can not be empty string")
	}
	s.event = &Event{TxID: s.txID, Name: name, Payload: payload}
	return nil
}

// GetState reads committed state only and records the key's version.
func (s *Stub) GetState(key string) ([]byte, error) {
	s.reads[key] = s.ledger.version[key]
	return s.ledger.State[key], nil
}

// PutState buffers a write.
func (s *Stub) PutState(key string, value []byte) error {
	if key == "" {
		return errors.New("key must not be an empty string")
	}
	if len(value) == 0 {
		return errors.New("value must not be empty")
	}
	s.writes[key] = value
	return nil
}

// GetStateValidationParameter reads the committed key-level policy (nil when
// none) and records the key's version, like the peer's GetStateMetadata.
func (s *Stub) GetStateValidationParameter(key string) ([]byte, error) {
	s.reads[key] = s.ledger.version[key]
	return s.ledger.Validation[key], nil
}

// SetStateValidationParameter buffers a key-level policy write.
func (s *Stub) SetStateValidationParameter(key string, ep []byte) error {
	if key == "" {
		return errors.New("key must not be an empty string")
	}
	s.vwrites[key] = ep
	return nil
}

// CreateCompositeKey implements the stub.
func (s *Stub) CreateCompositeKey(objectType string, attributes []string) (string, error) {
	return shim.CreateCompositeKey(objectType, attributes)
}

// SplitCompositeKey implements the stub.
func (s *Stub) SplitCompositeKey(compositeKey string) (string, []string, error) {
	if !strings.HasPrefix(compositeKey, "\x00") {
		return "", nil, fmt.Errorf("not a composite key: %q", compositeKey)
	}
	parts := strings.Split(strings.TrimSuffix(compositeKey[1:], "\x00"), "\x00")
	return parts[0], parts[1:], nil
}

// GetStateByPartialCompositeKey iterates committed state in key order.
func (s *Stub) GetStateByPartialCompositeKey(objectType string, attributes []string) (shim.StateQueryIteratorInterface, error) {
	prefix, err := shim.CreateCompositeKey(objectType, attributes)
	if err != nil {
		return nil, err
	}
	keys := s.ledger.keysWithPrefix(prefix)
	rr := rangeRead{prefix: prefix, keys: keys}
	it := &iterator{}
	for _, k := range keys {
		rr.vers = append(rr.vers, s.ledger.version[k])
		it.kvs = append(it.kvs, &queryresult.KV{Namespace: "fake", Key: k, Value: s.ledger.State[k]})
	}
	s.ranges = append(s.ranges, rr)
	return it, nil
}

func (s *Stub) checkRead(collection string) error {
	if !s.ledger.Member(collection, s.creatorMSP) {
		return fmt.Errorf("tx creator does not have read access permission on privatedata in chaincodeName:fake collectionName: %s", collection)
	}
	return nil
}

// GetPrivateData reads committed private data, enforcing memberOnlyRead.
func (s *Stub) GetPrivateData(collection, key string) ([]byte, error) {
	if err := s.checkRead(collection); err != nil {
		return nil, err
	}
	return s.ledger.Private[collection][key], nil
}

// GetPrivateDataHash returns sha256 of the committed private value, or nil;
// readable by anyone, like the hashed state on a peer.
func (s *Stub) GetPrivateDataHash(collection, key string) ([]byte, error) {
	v, ok := s.ledger.Private[collection][key]
	if !ok {
		return nil, nil
	}
	h := sha256.Sum256(v)
	return h[:], nil
}

// PutPrivateData buffers a private write (memberOnlyWrite is false in
// synthreg's collections, so no membership check).
func (s *Stub) PutPrivateData(collection, key string, value []byte) error {
	if len(value) == 0 {
		return errors.New("value must not be empty")
	}
	if s.pwrites[collection] == nil {
		s.pwrites[collection] = map[string][]byte{}
	}
	s.pwrites[collection][key] = value
	return nil
}

type iterator struct {
	kvs []*queryresult.KV
	pos int
}

func (it *iterator) HasNext() bool { return it.pos < len(it.kvs) }
func (it *iterator) Close() error  { return nil }
func (it *iterator) Next() (*queryresult.KV, error) {
	if !it.HasNext() {
		return nil, errors.New("iterator exhausted")
	}
	kv := it.kvs[it.pos]
	it.pos++
	return kv, nil
}
