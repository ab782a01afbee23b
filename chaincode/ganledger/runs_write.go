package ganledger

import (
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/synthreg/synthreg/chaincode/internal/access"
	"github.com/synthreg/synthreg/chaincode/internal/ccerr"
	"github.com/synthreg/synthreg/chaincode/internal/members"
	"github.com/synthreg/synthreg/chaincode/internal/validate"
)

// ProposeRun records the training run `run` as proposed: specJSON = RunSpec
// (at most MaxRunSpecBytes; every field required, none null, none other,
// no duplicate key at any depth; participants sorted, unique consortium
// MSPs, 1..64; threshold 1..len(participants); rounds and local_iters
// 1..1000000; audit_rounds strictly ascending in [0, rounds); schema 1..131072
// characters; ceremony_id 1..128 characters; config and stop_rule JSON
// objects). Admin role only, and the caller's MSP must be a participant
// (ACCESS_DENIED otherwise). Write-once per run id (ALREADY_EXISTS).
// Stores the exact specJSON text as spec_json, run_sha256 = its SHA-256,
// status "proposed", the caller's stamp as proposer and no approvals; emits
// RunProposed {run, msp, status, txid}; returns the RunReceipt.
func (c *Contract) ProposeRun(ctx contractapi.TransactionContextInterface, run string, specJSON string) (string, error) {
	spec, err := parseSpec(run, specJSON)
	if err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	if err := refuseNonParticipant(spec, run, caller); err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	if err := members.RequireNamed(stub, specFieldParticipants, spec.Participants...); err != nil {
		return "", err
	}
	key, err := runKey(stub, run)
	if err != nil {
		return "", err
	}
	if err := refuseExisting(stub, key, runWhatName, run); err != nil {
		return "", err
	}
	stamp, err := stampOf(stub, caller)
	if err != nil {
		return "", err
	}
	doc := &RunDocument{Run: run, SpecJSON: specJSON, RunFacts: RunFacts{
		RunSHA256: hexSHA256([]byte(specJSON)),
		Status:    RunProposed,
		Proposer:  stamp,
		Approvals: map[string]Stamp{},
	}}
	return saveRun(stub, doc, EventRunProposed, caller.MSPID, "")
}

// ApproveRun records the caller organisation's approval of run:
// approvalJSON = ApprovalArg {run_sha256, schema_sha256} (both required,
// lower-case hex SHA-256), which must equal the run's run_sha256 and its
// spec's schema_sha256 (PRECONDITION_FAILED naming both hashes otherwise).
// Admin role of a participant (ACCESS_DENIED naming the MSP and the
// participants); NOT_FOUND without the run; PRECONDITION_FAILED "run <id> is
// started" / "... is aborted"; ALREADY_EXISTS when the organisation approved
// before. Adds the caller's stamp to approvals; when every participant has
// approved, status becomes "started", started = this stamp and the event is
// RunStarted, otherwise RunApproved ({run, msp, status, txid} both).
// Returns the RunReceipt.
func (c *Contract) ApproveRun(ctx contractapi.TransactionContextInterface, run string, approvalJSON string) (string, error) {
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	var arg ApprovalArg
	if err := validate.Complete(approvalArgName, []byte(approvalJSON), maxApprovalJSONBytes, &arg); err != nil {
		return "", err
	}
	if err := hashFields(approvalArgName, [2]string{"run_sha256", arg.RunSHA256}, [2]string{"schema_sha256", arg.SchemaSHA256}); err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	doc, spec, err := participantAdminRun(stub, run, caller)
	if err != nil {
		return "", err
	}
	if doc.Status != RunProposed {
		return "", precondition("run %s is %s: approvals are closed", run, doc.Status)
	}
	if arg.RunSHA256 != doc.RunSHA256 {
		return "", precondition("run sha256 %s differs from the run's %s (run %s): approve the spec the ledger holds",
			arg.RunSHA256, doc.RunSHA256, run)
	}
	if arg.SchemaSHA256 != spec.SchemaSHA256 {
		return "", precondition("schema sha256 %s differs from the run's %s (run %s)", arg.SchemaSHA256, spec.SchemaSHA256, run)
	}
	if _, done := doc.Approvals[caller.MSPID]; done {
		return "", &ccerr.AlreadyExistsError{What: "approval", Key: run + "/" + caller.MSPID}
	}
	stamp, err := stampOf(stub, caller)
	if err != nil {
		return "", err
	}
	doc.Approvals[caller.MSPID] = stamp
	event := EventRunApproved
	if len(doc.Approvals) == len(spec.Participants) { // every approval is a participant's, none twice
		doc.Status, doc.Started, event = RunStarted, &stamp, EventRunStarted
	}
	return saveRun(stub, doc, event, caller.MSPID, "")
}

// AbortRun ends run for good: reason = 1..1024 characters of UTF-8 text.
// Admin role of a participant (ACCESS_DENIED otherwise); NOT_FOUND without
// the run; PRECONDITION_FAILED "run <id> is aborted" the second time. A
// proposed or started run becomes "aborted", aborted = the caller's stamp
// plus reason; approvals and steps are refused from then on. Emits
// RunAborted {run, msp, status, txid, reason}; returns the RunReceipt.
func (c *Contract) AbortRun(ctx contractapi.TransactionContextInterface, run string, reason string) (string, error) {
	if err := validate.Key("run", run); err != nil {
		return "", err
	}
	if err := validate.Text("reason", reason, 1, MaxAbortReasonChars); err != nil {
		return "", err
	}
	caller, err := access.Require(ctx, access.RoleAdmin)
	if err != nil {
		return "", err
	}
	stub := ctx.GetStub()
	doc, _, err := participantAdminRun(stub, run, caller)
	if err != nil {
		return "", err
	}
	if doc.Status == RunAborted {
		return "", precondition("run %s is aborted (by %s at %s)", run, doc.Aborted.MSPID, doc.Aborted.Timestamp)
	}
	stamp, err := stampOf(stub, caller)
	if err != nil {
		return "", err
	}
	doc.Status, doc.Aborted = RunAborted, &RunAbort{Stamp: stamp, Reason: reason}
	return saveRun(stub, doc, EventRunAborted, caller.MSPID, reason)
}
