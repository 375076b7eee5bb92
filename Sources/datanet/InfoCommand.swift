import DatanetCrypto
import DatanetLedger
import DatanetRecords
import Foundation

/// `datanet info D`: the policy in force, with names beside keys, the log's size and its newest checkpoint.
func runInfo(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let policy = st.policy
    let note = try ledger.reader.latestCheckpoint(st.id)
    let cp = note.flatMap { try? Checkpoint.unverified(note: $0) }
    var names = KeyNames()
    let pinned = try ledger.provenance.pinned().contains(st.id)
    if p.has("--json") {
        func key(_ k: PublicKey) -> [String: Any] { ["key": k.description, "name": names.name(k) ?? NSNull()] }
        try printJSON(["id": st.id.hex, "name": policy.name, "owner": key(policy.owner), "sequencer": key(policy.sequencer),
                       "curators": policy.curators.map(key), "quorum": policy.quorum,
                       "contributors": policy.contributors.map { $0.map(key) } ?? NSNull(), "readers": policy.readers.map { $0.map(key) } ?? NSNull(), "builders": policy.builders.map(key),
                       "max_pending_proposals": policy.maxPendingProposals, "max_pending_bytes": policy.maxPendingBytes,
                       "size": st.size, "policy_record": st.policyRecord.hex, "policy_leaf": st.policyIndex,
                       "checkpoint": cp.map { ["size": $0.size, "root": $0.root.hex] as [String: Any] } ?? NSNull(), "pinned": pinned])
        return 0
    }
    func list(_ keys: [PublicKey]?, _ anyone: String) -> String {
        keys.map { $0.isEmpty ? "nobody" : $0.map { names.label($0) }.joined(separator: ", ") } ?? anyone
    }
    out("\(terminalSafe(policy.name))  \(st.id.hex)")
    out("owner:        \(names.label(policy.owner))")
    out("sequencer:    \(names.label(policy.sequencer))")
    out("curators:     \(list(policy.curators, "none")) — quorum \(policy.quorum) of \(policy.curators.count)")
    out("contribute:   \(list(policy.contributors, "anyone (open)"))")
    out("read:         \(list(policy.readers, "everyone (public)"))")
    out("build models: the owner and curators" + (policy.builders.isEmpty ? "" : ", and \(list(policy.builders, ""))"))
    out("quotas:       \(policy.maxPendingProposals) undecided proposals and \(humanBytes(policy.maxPendingBytes)) per author")
    out("policy:       record \(st.policyRecord.hex.prefix(16))… at leaf \(st.policyIndex)")
    out("log:          \(st.size) leaves" + (cp.map { ", newest checkpoint size \($0.size), root \($0.root.hex.prefix(16))…" } ?? ", no checkpoint held"))
    out("anchor:       " + (pinned ? "pinned here" : "not pinned (`datanet pin \(st.id.hex.prefix(12))` to anchor receipts at it)"))
    return 0
}
