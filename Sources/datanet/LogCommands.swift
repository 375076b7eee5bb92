import DatanetCBOR
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// A short human description of a record. Every text field comes from a record or a sidecar
/// (possibly made in another store), so each passes through `terminalSafe`.
func summary(_ e: Envelope, _ ledger: Ledger) -> String {
    guard let r = try? Record(e) else { return e.kind.rawValue }
    switch r {
    case .genesis(let g): return "genesis '\(terminalSafe(g.policy.name))'"
    case .contribution(let c):
        let name = (try? ledger.reader.sidecar(of: c))?.map { "'\(terminalSafe($0.label))'" } ?? "\(c.content.hex.prefix(12)) (sidecar not held)"
        return "contribution \(name) by \(c.author.description.prefix(12)) (\(c.size) bytes, \(terminalSafe(c.license)))"
    case .review(let v):
        return "review: \(v.accept ? "accept" : "reject") \(v.contributions.count) by \(v.reviewer.description.prefix(12))" + (v.reason.isEmpty ? "" : ": \(terminalSafe(v.reason))")
    case .policy(let p): return "policy: \(terminalSafe(p.summary))"
    case .setSequencer(let s): return "set-sequencer \(s.sequencer.description.prefix(12))"
    case .continuation(let c): return "continuation at size \(c.size)"
    case .tombstone(let t): return "\(t.takedown ? "takedown" : "withdrawal") of \(t.contribution.hex.prefix(16))…: \(terminalSafe(t.reason))"
    }
}

func runDatanets(_ p: Parsed) throws -> Int32 {
    let all: [DatanetState]
    do { all = try openLedgerForReading().reader.datanets() } catch LedgerStateError.noLedger { all = [] }
    if p.has("--json") {
        try printJSON(all.map { ["id": $0.id.hex, "name": $0.policy.name, "size": $0.size, "curators": $0.policy.curators.count,
                                 "quorum": $0.policy.quorum, "private": $0.policy.readers != nil] as [String: Any] })
    } else if all.isEmpty {
        out("no Datanets; create one with `datanet create NAME`")
    } else {
        for d in all { out("\(d.id.hex)  \(terminalSafe(d.policy.name))  size \(d.size)  curators \(d.policy.curators.count), quorum \(d.policy.quorum)") }
    }
    return 0
}

func runPending(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let records = try ledger.reader.pendingRecords(st.id)
    // Contributions already taken in but not decided: what the curators still have to review.
    let awaiting = try ledger.reader.undecidedContributions(st.id).compactMap { u in try ledger.reader.record(u.id).map { (u.intake, $0) } }
    func near(_ id: RecordID) throws -> String {
        try ledger.reader.duplicateFlag(of: id).map { "  [\($0.exact ? "exact duplicate" : "near-duplicate") of \($0.earlier.hex)]" } ?? ""
    }
    if p.has("--json") {
        func row(_ e: Envelope, stage: String, leaf: UInt64?) throws -> [String: Any] {
            let flag = try ledger.reader.duplicateFlag(of: e.id)
            return ["id": e.id.hex, "kind": e.kind.rawValue, "stage": stage, "leaf": leaf.map { Int($0) } ?? NSNull(), "summary": summary(e, ledger),
                    "signatures": e.signatures.count, "near_duplicate_of": flag.flatMap { $0.exact ? nil : $0.earlier.hex } ?? NSNull(),
                    "exact_duplicate_of": flag.flatMap { $0.exact ? $0.earlier.hex : nil } ?? NSNull()]
        }
        try printJSON(try records.map { try row($0, stage: "queued", leaf: nil) } + awaiting.map { try row($0.1, stage: "awaiting-review", leaf: $0.0) })
        return 0
    }
    if records.isEmpty && awaiting.isEmpty { out("nothing pending for \(terminalSafe(st.policy.name))") }
    if !records.isEmpty {
        out("queued for the sequencer:")
        for e in records { out("  \(e.id.hex)  \(summary(e, ledger))\(try near(e.id))") }
    }
    if !awaiting.isEmpty {
        out("taken in, awaiting review (quorum \(st.policy.quorum) of \(st.policy.curators.count) curators):")
        for (i, e) in awaiting { out("  \(e.id.hex)  leaf \(i)  \(summary(e, ledger))\(try near(e.id))") }
    }
    return 0
}

func runLog(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let from = UInt64(try integerOption(p, "--from") ?? 0)
    let leaves = try ledger.reader.leaves(st.id, from: from)
    func describe(_ leaf: Leaf) -> String {
        switch leaf.payload {
        case .decision(let d):
            var cited = ""
            if case .cited(let leaves) = d.reviews, !leaves.isEmpty { cited = " (review leaves \(leaves.map(String.init).joined(separator: ", ")))" }
            return "decision \(d.contribution.hex.prefix(16)) \(d.accepted ? "accepted" : "rejected"): \(terminalSafe(d.reason))\(cited)"
        case .review(let e):
            return summary(e, ledger) // "review: accept N by …"
        default:
            return leaf.records.first.map { "\(leaf.kind) \(summary($0, ledger))" } ?? "\(leaf.kind)"
        }
    }
    if p.has("--json") {
        try printJSON(leaves.map { ["index": $0.index, "kind": $0.leaf.kind.description, "hash": $0.leaf.hash.hex,
                                    "policy_index": $0.leaf.policy.map { Int($0.index) } ?? -1, "summary": describe($0.leaf)] as [String: Any] })
    } else {
        for (i, leaf) in leaves { out("\(String(i).leftPad(6))  \(describe(leaf))") }
        if let note = try ledger.reader.latestCheckpoint(st.id) { out("checkpoint:\n" + note.split(separator: "\n").prefix(3).map { "  " + $0 }.joined(separator: "\n")) }
    }
    return 0
}

func runShow(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let id = try resolveRecord(ledger, p.positionals[0])
    guard let e = try ledger.reader.record(id) else { throw StoreError.notFound(id: p.positionals[0]) }
    let placement = try ledger.reader.placement(id)
    let decision = try ledger.reader.decision(id)
    let promise = try ledger.reader.promise(id)
    let near = try ledger.reader.duplicateFlag(of: id)
    // The erasable sidecar (label, file name, free metadata), when this store holds it.
    var side: Sidecar?
    if case .contribution(let c)? = try? Record(e) { side = try ledger.reader.sidecar(of: c) }
    let status = try ledger.reader.status(of: id)
    if p.has("--json") {
        var o: [String: Any] = ["id": id.hex, "kind": e.kind.rawValue, "summary": summary(e, ledger),
                                "signers": e.signatures.map { $0.key.description }, "hex": Hex.encode(e.encoded)]
        if let status {
            for (k, v) in statusJSON(status, datanet: status.contribution.datanet, sidecar: side) where o[k] == nil { o[k] = v }
        }
        if let (d, i) = placement { o["datanet"] = d.hex; o["leaf"] = i }
        if let decision { o["decision_leaf"] = decision }
        if let promise { o["intake_promise_valid"] = promise.isValid }
        if let near { o[near.exact ? "exact_duplicate_of" : "near_duplicate_of"] = near.earlier.hex }
        if let side { o["sidecar"] = ["label": side.label, "file_name": side.fileName, "metadata": side.metadata] as [String: Any] }
        try printJSON(o)
    } else {
        out("\(e.kind.rawValue)  \(id.hex)\n\(summary(e, ledger))")
        for s in e.signatures { out("signed by \(s.key)") }
        if let (_, i) = placement { out("in the log at leaf \(i)") } else { out("not yet in a log (pending)") }
        if let status {
            var names = KeyNames()
            out(statusLine(status, names: &names))
        } else if let decision { out("decided at leaf \(decision)") }
        if let promise { out("intake promise by \(promise.sequencer): \(promise.isValid ? "valid" : "INVALID")") }
        if let near {
            out(near.exact ? "exact duplicate of \(near.earlier.hex) (the same content id; rejected at intake)"
                           : "near-duplicate of \(near.earlier.hex) (MinHash, schema/curation.md)")
        }
        if let side {
            out("file name: \(terminalSafe(side.fileName))")
            for (k, v) in side.metadata.sorted(by: { $0.key < $1.key }) { out("meta \(terminalSafe(k)) = \(terminalSafe(v))") }
        }
    }
    return 0
}

func runCheckpoint(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    guard let file = p.options["--observe"] else {
        guard let note = try ledger.reader.latestCheckpoint(st.id) else { throw CLIError.failure("no checkpoint for \(terminalSafe(st.policy.name)) yet") }
        writeFD(1, note.utf8)
        return 0
    }
    guard let data = FileManager.default.contents(atPath: file) else { throw StoreError.io(path: file, operation: "read", errno: ENOENT) }
    switch try ledger.observe(note: String(decoding: data, as: UTF8.self), datanet: st.id) {
    case .consistent(let size):
        out("checkpoint at size \(size) is consistent with this log (size \(st.size))")
        return 0
    case .inconsistent(let size):
        err("datanet: checkpoint at size \(size) disagrees with this log, but this store holds no signed checkpoint of that size to prove a fork; it is kept as observed")
        return 1
    case .fork(let evidence):
        err("datanet: FORK: two signed checkpoints of \(terminalSafe(st.policy.name)) disagree; evidence follows on standard output")
        writeFD(1, (evidence + "\n").utf8)
        return 1
    }
}
