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
        // The file name (the label too when it says something else), else the content id.
        let name = (try? ledger.reader.sidecar(of: c))?.map { side in
            let file = side.fileName.isEmpty ? side.label : side.fileName
            return "'\(terminalSafe(file))'" + (side.label.isEmpty || side.label == file ? "" : " [\(terminalSafe(side.label))]")
        } ?? "\(c.content.hex.prefix(12)) (sidecar not held)"
        return "contribution \(name) by \(c.author.description.prefix(12)) (\(humanBytes(c.size)), \(terminalSafe(c.license)))"
    case .review(let v):
        return "review: \(v.accept ? "accept" : "reject") \(v.contributions.count) by \(v.reviewer.description.prefix(12))" + (v.reason.isEmpty ? "" : ": \(terminalSafe(v.reason))")
    case .policy(let p): return "policy: \(terminalSafe(p.summary))"
    case .setSequencer(let s): return "set-sequencer \(s.sequencer.description.prefix(12))"
    case .continuation(let c): return "continuation at size \(c.size)"
    case .tombstone(let t): return "\(t.takedown ? "takedown" : "withdrawal") of \(t.contribution.hex.prefix(16))…: \(terminalSafe(t.reason))"
    case .attribution(let a):
        let n: String = switch a.credits { case .inline(let l): "\(l.entries.count)"; case .blob(_, let c): "\(c)" }
        return "attribution (\(terminalSafe(a.method))) by \(a.signer.description.prefix(12)): \(n) contribution(s) credited"
    case .valuation(let v):
        let n: String = switch v.values { case .inline(let l): "\(l.entries.count)"; case .blob(_, let c): "\(c)" }
        return "valuation (\(terminalSafe(v.method))) of model \(v.model.hex.prefix(12)) by \(v.signer.description.prefix(12)): \(n) contribution(s)"
    case .model(let m):
        return "model '\(terminalSafe(m.name))' by \(m.builder.description.prefix(12)): \(terminalSafe(m.trainer)) \(terminalSafe(m.trainerVersion)) on checkpoint \(m.checkpointSize), artifact \(m.artifact.hex.prefix(12)) (\(humanBytes(m.artifactSize)))"
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
            var o: [String: Any] = ["id": e.id.hex, "kind": e.kind.rawValue, "stage": stage, "leaf": leaf.map { Int($0) } ?? NSNull(), "summary": summary(e, ledger),
                                    "signatures": e.signatures.count, "near_duplicate_of": flag.flatMap { $0.exact ? nil : $0.earlier.hex } ?? NSNull(),
                                    "exact_duplicate_of": flag.flatMap { $0.exact ? $0.earlier.hex : nil } ?? NSNull(),
                                    "author": e.signatures.first?.key.description ?? NSNull()]
            // Contributions carry where they stand: state, reason, content and files, as `status --json`.
            if let st = try ledger.reader.status(of: e.id) {
                for (k, v) in statusJSON(st, datanet: st.contribution.datanet) where o[k] == nil { o[k] = v }
            }
            return o
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
    let known = LeafKind.allCases.map(\.description)
    let kinds = Set(p.all("--kind"))
    if let bad = kinds.first(where: { !known.contains($0) }) {
        throw CLIError.usage("unknown leaf kind '\(bad)' (\(known.joined(separator: ", ")))")
    }
    let author = try p.options["--author"].map { try resolveKey($0, among: policyKeys(st.policy)) }
    let count = try integerOption(p, "-n")
    if p.has("--all") && count != nil { throw CLIError.usage("give -n N or --all, not both") }
    // Text shows the newest 20 unless asked otherwise; JSON and --from list everything.
    let limit = p.has("--all") ? nil : count ?? (p.has("--json") || p.options["--from"] != nil ? nil : 20)
    let filtered = !kinds.isEmpty || author != nil
    var from = UInt64(try integerOption(p, "--from") ?? 0)
    if let limit, !filtered { from = max(from, st.size > UInt64(limit) ? st.size - UInt64(limit) : 0) }
    func matches(_ leaf: LeafSummary) -> Bool {
        if !kinds.isEmpty && !kinds.contains(leaf.kind.description) { return false }
        guard let author else { return true }
        switch leaf {
        case .intake(let a, _, _): return a == author
        case .decision: return false
        case .other(let l): return l.records.contains { $0.signatures.contains { $0.key == author } }
        }
    }
    if p.has("--json") {
        // JSON carries each leaf's hash, so leaves are decoded in full.
        let statuses = Dictionary(try ledger.reader.statuses(st.id).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var json = [(UInt64, [String: Any])]()
        try ledger.reader.forEachLeaf(st.id, from: from) { i, leaf in
            guard matches(try LeafSummary(leaf)) else { return true }
            json.append((i, try logJSON(i, leaf, ledger, st, statuses)))
            if filtered, let limit, json.count > limit { json.removeFirst(json.count - limit) }
            return true
        }
        try printJSON(json.map(\.1))
        return 0
    }
    var shown = 0
    var names = KeyNames()
    names.load()
    // A kind filter passes over the other leaves unread.
    let kindSet = kinds.isEmpty ? nil : Set(LeafKind.allCases.filter { kinds.contains($0.description) })
    if filtered, let limit {
        // The newest `limit` matches: kept in a window while the log streams by.
        var window = [(UInt64, LeafSummary)]()
        try ledger.reader.forEachLeafSummary(st.id, from: from, kinds: kindSet) { i, leaf in
            guard matches(leaf) else { return true }
            window.append((i, leaf))
            if window.count > 2 * limit + 64 { window.removeFirst(window.count - limit) }
            return true
        }
        var lines = LogLines(names: names)
        for (i, leaf) in window.suffix(limit) { lines.write(i, leaf, ledger) }
        shown = lines.count
        lines.flush()
    } else {
        // Every leaf from `from`: lines written by the block workers, each with its own names.
        let template = LogLines(names: names)
        try ledger.reader.forEachLeafBlock(st.id, from: from, kinds: kindSet, start: { template }, add: { lines, i, leaf in
            if matches(leaf) { lines.write(i, leaf, ledger) }
        }, consume: { block in
            var block = block
            shown += block.count
            block.flush()
        })
    }
    if shown == 0 { out(filtered ? "no leaf matches" : "no leaves from \(from)") }
    if limit != nil, !p.has("--all"), (filtered ? shown == limit! : from > 0) {
        out("(the newest \(shown)\(filtered ? " matching" : "") of \(st.size) leaves; -n N or --all for more)")
    }
    if let note = try ledger.reader.latestCheckpoint(st.id) { out("checkpoint:\n" + note.split(separator: "\n").prefix(3).map { "  " + $0 }.joined(separator: "\n")) }
    return 0
}

/// Leaves as `log` lines, each from the leaf alone (no other lookups: `log` streams). Intake
/// and decision lines, nearly every line of a log, are written as bytes, with the names,
/// sizes and reasons they repeat formatted once.
struct LogLines {
    var names: KeyNames
    private var sizes = SizeTexts()
    private var reason = (text: "", safe: "")
    private var cited = (leaves: [UInt64](), text: "")
    private var w = LineWriter(flushing: false)
    /// Lines written since the last flush.
    private(set) var count = 0

    init(names: KeyNames) { self.names = names }

    /// Adds the numbered line of leaf `i`.
    mutating func write(_ i: UInt64, _ leaf: LeafSummary, _ ledger: Ledger) {
        count += 1
        w.number(i, width: 6)
        w.text("  ")
        append(leaf, ledger)
        w.newline()
    }

    /// Writes the lines out.
    mutating func flush() {
        w.flush()
        count = 0
    }

    /// Adds the line's text after its number.
    private mutating func append(_ leaf: LeafSummary, _ ledger: Ledger) {
        switch leaf {
        case .intake(let author, let record, let c):
            w.text("intake     "); w.hex(record, 16); w.text("  by "); w.text(names.label(author)); w.text("  ")
            w.text(sizes(c.size))
        case .decision(let d):
            if d.reason != reason.text { reason = (d.reason, terminalSafe(d.reason)) }
            w.text("decision   "); w.hex(d.contribution, 16); w.text(d.accepted ? "  accepted: " : "  rejected: "); w.text(reason.safe)
            if case .cited(let leaves) = d.reviews, !leaves.isEmpty {
                if leaves != cited.leaves { cited = (leaves, " (review leaves \(ranges(leaves)))") }
                w.text(cited.text)
            }
        case .other(let leaf):
            if case .review(let e) = leaf.payload, case .review(let r)? = try? Record(e) {
                w.text("review     "); w.hex(e.id, 16)
                w.text("  \(r.accept ? "accept" : "reject") \(r.contributions.count) by \(names.label(r.reviewer))" + (r.reason.isEmpty ? "" : ": \(terminalSafe(r.reason))"))
            } else if case .decision(let d) = leaf.payload {
                w.text("decision   "); w.hex(d.contribution, 16)
                w.text("  \(d.accepted ? "accepted" : "rejected"): \(terminalSafe(d.reason))")
            } else {
                w.text(leaf.records.first.map { "\(leaf.kind.description.padding(toLength: 10, withPad: " ", startingAt: 0)) \(summary($0, ledger))" } ?? "\(leaf.kind)")
            }
        }
    }

    /// The line as text (`log --json`'s summary).
    mutating func text(_ leaf: LeafSummary, _ ledger: Ledger) -> String {
        let held = w
        defer { w = held }
        w = LineWriter(flushing: false)
        append(leaf, ledger)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

/// A leaf for `log --json`: its index, kind and hash, the record it carries (`id`, `author`),
/// and for intakes and decisions the contribution's `state`, `reason`, `content` and `files`.
func logJSON(_ i: UInt64, _ leaf: Leaf, _ ledger: Ledger, _ st: DatanetState, _ statuses: [RecordID: ContributionStatus]) throws -> [String: Any] {
    var lines = LogLines(names: KeyNames())
    var o: [String: Any] = ["index": i, "kind": leaf.kind.description, "hash": leaf.hash.hex,
                            "policy_index": leaf.policy.map { Int($0.index) } ?? -1, "summary": lines.text(try LeafSummary(leaf), ledger)]
    var contribution: RecordID?
    switch leaf.payload {
    case .intake(let x): (o["id"], o["author"], contribution) = (x.record.hex, x.author.description, x.record)
    case .decision(let d): (o["id"], contribution) = (d.contribution.hex, d.contribution)
    case .tombstone(let t): (o["id"], o["author"], contribution) = (t.record.id.hex, t.record.signatures.first?.key.description ?? NSNull(), t.contribution)
    default:
        if let e = leaf.records.first { (o["id"], o["author"]) = (e.id.hex, e.signatures.first?.key.description ?? NSNull()) }
    }
    if let contribution, let s = statuses[contribution] {
        let row = statusJSON(s, datanet: st.id)
        for k in ["state", "reason", "content", "files"] { o[k] = row[k] }
        if leaf.kind != .intake { o["contribution_author"] = row["author"] }
    }
    return o
}

/// Sorted indexes as ranges: "3–7, 9".
func ranges(_ xs: [UInt64]) -> String {
    var parts = [String]()
    var k = 0
    let sorted = xs.sorted()
    while k < sorted.count {
        var j = k
        while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
        parts.append(j == k ? "\(sorted[k])" : "\(sorted[k])–\(sorted[j])")
        k = j + 1
    }
    return parts.joined(separator: ", ")
}

func runShow(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    // Any record by id or prefix; a contribution also by the path it was contributed from.
    let id: RecordID
    do { id = try resolveRecord(ledger, p.positionals[0]) } catch StoreError.notFound {
        id = try resolveContribution(ledger, p.positionals[0]).id
    } catch StoreError.badId {
        id = try resolveContribution(ledger, p.positionals[0]).id
    }
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
            for (k, v) in statusJSON(status, datanet: status.contribution.datanet) where o[k] == nil { o[k] = v }
        }
        if let (d, i) = placement { o["datanet"] = d.hex; o["leaf"] = i }
        if let decision { o["decision_leaf"] = decision }
        if let promise { o["intake_promise_valid"] = promise.isValid }
        if let near { o[near.exact ? "exact_duplicate_of" : "near_duplicate_of"] = near.earlier.hex }
        if let side { o["sidecar"] = ["label": side.label, "file_name": side.fileName, "metadata": side.metadata] as [String: Any] }
        // The typed body of the kinds no other field shows (results and models).
        if [.attribution, .valuation, .model].contains(e.kind) {
            o["record"] = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(try RecordView.record(e)))
        }
        try printJSON(o)
    } else {
        out("\(e.kind.rawValue)  \(id.hex)\n\(summary(e, ledger))")
        for s in e.signatures { out("signed by \(s.key)") }
        let isResult = e.kind == .attribution || e.kind == .valuation
        if let (_, i) = placement { out("in the log at leaf \(i)") } else { out(isResult ? "kept in this store (results are not sequenced)" : "not yet in a log (pending)") }
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
