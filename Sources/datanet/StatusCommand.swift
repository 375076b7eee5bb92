import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import Foundation

/// Names for keys this store holds identities or contacts of (a key shown with its name beside
/// it). The names are read on first use and then held, so a copy made after `load()` is a
/// snapshot listing workers format with, each on its own thread.
struct KeyNames: Sendable {
    private var known: [PublicKey: String]?

    /// Reads the names of this store's identities (first by name wins) and then its contacts.
    mutating func load() {
        guard known == nil else { return }
        var found = [PublicKey: String]()
        let ids = IdentityStore(storeDirectory: storeDir)
        for n in ids.names() { if let i = try? ids.load(n), found[i.publicKey] == nil { found[i.publicKey] = i.name } }
        for c in (try? ContactBook(storeDirectory: storeDir).all()) ?? [] {
            if found[c.publicKey] == nil { found[c.publicKey] = c.name }
        }
        known = found
    }

    mutating func name(_ key: PublicKey) -> String? {
        load()
        return known![key]
    }
    private var labels = [PublicKey: String]()
    /// "name (1a2b3c4d5e6f)" or the 12-digit prefix alone.
    mutating func label(_ key: PublicKey) -> String {
        if let hit = labels[key] { return hit }
        let short = String(key.description.prefix(12))
        let made = name(key).map { "\(terminalSafe($0)) (\(short))" } ?? short
        labels[key] = made
        return made
    }

    private var lastReviewers = (verdicts: [ContributionStatus.Verdict](), accept: Bool?.none, text: "")
    /// "name (1a2b3c4d5e6f): "reason"; …" for the reviews of one verdict (all when nil); the
    /// last answer is kept, as a listing asks for the same reviewers row after row.
    mutating func reviewers(_ verdicts: [ContributionStatus.Verdict], accept: Bool?) -> String {
        if verdicts == lastReviewers.verdicts && accept == lastReviewers.accept { return lastReviewers.text }
        let picked = verdicts.filter { accept == nil || $0.accept == accept! }
        let text = picked.map { label($0.reviewer) + ($0.reason.isEmpty ? "" : ": \"\(terminalSafe($0.reason))\"") }.joined(separator: "; ")
        lastReviewers = (verdicts, accept, text)
        return text
    }
}

/// A status row as JSON: the fields `status`, `show` and `pending` share.
func statusJSON(_ s: ContributionStatus, datanet: DatanetID) -> [String: Any] {
    let o: [String: Any] = ["id": s.id.hex, "datanet": datanet.hex, "state": s.state.rawValue, "author": s.contribution.author.description,
                            "content": s.contribution.content.hex, "size": s.contribution.size, "license": s.contribution.license,
                            "reason": s.reason ?? NSNull(), "intake_leaf": s.intake.map { Int($0) } ?? NSNull(),
                            "decision_leaf": s.decision.map { Int($0) } ?? NSNull(), "tombstone_leaf": s.tombstone.map { Int($0) } ?? NSNull(),
                            "reviews": s.reviews.map { ["reviewer": $0.reviewer.description, "accept": $0.accept, "reason": $0.reason] as [String: Any] },
                            "accepts_needed": s.acceptsNeeded.map { $0 as Any } ?? NSNull(),
                            "label": s.sidecar?.label ?? NSNull(), "files": s.sidecar.map { [$0.fileName] } ?? []]
    return o
}

/// One line saying where a contribution stands; `waits` names why a queued one waits.
func statusLine(_ s: ContributionStatus, names: inout KeyNames, waits: String? = nil) -> String {
    var w = LineWriter(flushing: false)
    writeStatusLine(s, into: &w, names: &names, waits: waits)
    return String(decoding: w.bytes, as: UTF8.self)
}

/// Writes `statusLine` into `w` (a listing writes 100,000 of them without a string each).
func writeStatusLine(_ s: ContributionStatus, into w: inout LineWriter, names: inout KeyNames, waits: String? = nil) {
    func reviews(_ accept: Bool?) -> String { names.reviewers(s.reviews, accept: accept) }
    switch s.state {
    case .queued:
        w.text("queued here, not yet taken in" + (waits.map { " (\($0))" } ?? "") + (s.reviews.isEmpty ? "" : "; reviewed by \(reviews(nil))"))
    case .awaitingReview:
        let so = s.reviews.isEmpty ? "no review yet" : "reviewed by " + s.reviews.map { names.label($0.reviewer) + ($0.accept ? " (accept)" : " (reject)") }.joined(separator: ", ")
        w.text("taken in at leaf "); w.number(s.intake!); w.text(", awaiting review: \(so); \(s.acceptsNeeded ?? 0) more accept(s) needed")
    case .accepted:
        w.text("accepted at leaf "); w.number(s.decision!); w.text(" by "); w.text(reviews(true))
    case .rejected:
        let by = reviews(false)
        w.text("rejected at leaf "); w.number(s.decision!); w.text(by.isEmpty ? ": \(terminalSafe(s.reason ?? ""))" : " by \(by)")
    case .withdrawn, .takenDown:
        w.text("\(s.state == .withdrawn ? "withdrawn" : "taken down") at leaf \(s.tombstone!)" + (s.reason.map { $0.isEmpty ? "" : ": \(terminalSafe($0))" } ?? ""))
    }
}

func runStatus(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    if p.has("--mine") && p.has("--to-review") { throw CLIError.usage("give --mine or --to-review, not both") }
    let me = (p.has("--mine") || p.has("--to-review")) ? try signer().publicKey : nil
    let datanets = try p.positionals.first.map { [try ledger.reader.resolveDatanet($0)] } ?? ledger.reader.datanets()
    var names = KeyNames()
    names.load()
    var json = [[String: Any]]()
    for st in datanets {
        if p.has("--to-review") {
            guard st.policy.mayReview(me!) else {
                if p.positionals.isEmpty { continue }
                throw CLIError.failure("\(names.label(me!)) is not a curator of \(terminalSafe(st.policy.name))")
            }
        }
        if p.has("--json") {
            json += try statusRows(ledger, st, mine: p.has("--mine") ? me : nil, toReview: p.has("--to-review") ? me : nil)
                .map { statusJSON($0, datanet: st.id) }
            continue
        }
        out("\(terminalSafe(st.policy.name)): size \(st.size), quorum \(st.policy.quorum) of \(st.policy.curators.count) curator(s)")
        var lines = StatusLines(names: names)
        var counts = [ContributionStatus.State: Int]()
        var quotas = [PublicKey: (count: UInt64, bytes: UInt64)]()
        if let reviewer = p.has("--to-review") ? me : nil {
            for r in try statusRows(ledger, st, mine: nil, toReview: reviewer) { lines.write(r, waits: try waits(ledger, st, r, &quotas)) }
            lines.flush(into: &counts)
        } else {
            // Every contribution: two lines each, written by the block workers (a Datanet may
            // have 100,000); only the queued ones, which may wait on a quota, are written here.
            let mine = p.has("--mine") ? me : nil
            let template = lines
            try ledger.reader.forEachStatusBlock(st.id, { rows in
                var block = template
                for r in rows where mine == nil || r.contribution.author == mine { block.write(r) }
                return block
            }, consume: { block in
                var block = block
                block.flush(into: &counts)
            })
            for r in try ledger.reader.queuedStatuses(st.id) where mine == nil || r.contribution.author == mine {
                lines.write(r, waits: try waits(ledger, st, r, &quotas))
            }
            lines.flush(into: &counts)
        }
        let order: [ContributionStatus.State] = [.queued, .awaitingReview, .accepted, .rejected, .withdrawn, .takenDown]
        let parts = order.compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }
        out("  " + (parts.isEmpty ? (p.has("--to-review") ? "nothing needs your review" : "no contributions") : parts.joined(separator: ", ")))
        for line in try unsyncedLines(ledger, st) { out("  " + line) }
    }
    if p.has("--json") { try printJSON(json) }
    return 0
}

/// The statuses `status --json` and `status --to-review` list: every contribution (`mine`: only
/// that author's), or the open ones `toReview` has not reviewed.
private func statusRows(_ ledger: Ledger, _ st: DatanetState, mine: PublicKey?, toReview: PublicKey?) throws -> [ContributionStatus] {
    guard let me = toReview else {
        let rows = try ledger.reader.statuses(st.id)
        return mine.map { me in rows.filter { $0.contribution.author == me } } ?? rows
    }
    return try ledger.reader.openStatuses(st.id).filter { ($0.state == .queued || $0.state == .awaitingReview) && !$0.reviews.contains { $0.reviewer == me } }
}

/// For each peer (`datanet peer`), what `datanet sync` has not yet sent it of `st`, as of the
/// last sync with it: leaves past the size it was known to hold, and records queued here since
/// that sync offered the queue.
private func unsyncedLines(_ ledger: Ledger, _ st: DatanetState) throws -> [String] {
    try ContactBook(storeDirectory: storeDir).all().filter { $0.address != nil }.map { peer in
        guard let size = peer.held?[st.id.hex] else { return "peer \(peer.name): never synced" }
        let leaves = st.size > size ? st.size - size : 0
        // Never pushed to: every record queued here is unsent.
        let records = try ledger.reader.queued(st.id, since: peer.queueSent?[st.id.hex] ?? 0)
        let parts = (leaves > 0 ? [leaves == 1 ? "1 leaf" : "\(leaves) leaves"] : []) + (records > 0 ? ["\(records) queued record" + (records == 1 ? "" : "s")] : [])
        return "peer \(peer.name): " + (parts.isEmpty ? "in sync as of the last sync" : parts.joined(separator: " and ") + " not yet sent")
    }
}

/// Why a queued contribution waits: its author is at the quota, so it is taken in as earlier
/// ones are decided.
private func waits(_ ledger: Ledger, _ st: DatanetState, _ r: ContributionStatus,
                   _ quotas: inout [PublicKey: (count: UInt64, bytes: UInt64)]) throws -> String? {
    guard r.state == .queued else { return nil }
    let a = r.contribution.author
    if quotas[a] == nil { quotas[a] = try ledger.reader.quota(st.id, author: a) }
    let q = quotas[a]!
    return st.policy.withinQuota(count: q.count, bytes: q.bytes, adding: r.contribution.size) ? nil
        : "waits: its author has \(q.count) undecided of the \(st.policy.maxPendingProposals) allowed; taken in as earlier ones are decided"
}

/// `status` lines, two a contribution, gathered as bytes with the count of each state: one per
/// block worker (names, sizes and reviewer lists formatted once per block), written in order.
struct StatusLines {
    var names: KeyNames
    private var sizes = SizeTexts()
    private var w = LineWriter(flushing: false)
    private var counts = [ContributionStatus.State: Int]()

    init(names: KeyNames) { self.names = names }

    mutating func write(_ r: ContributionStatus, waits: String? = nil) {
        counts[r.state, default: 0] += 1
        w.text("  "); w.hex(r.id, 12); w.text("  ")
        if let side = r.sidecar {
            w.text("'"); w.text(terminalSafe(side.fileName.isEmpty ? side.label : side.fileName)); w.text("'")
        } else {
            w.hex(r.contribution.content, 12); w.text("…")
        }
        w.text("  "); w.text(sizes(r.contribution.size)); w.text(" by "); w.text(names.label(r.contribution.author)); w.newline()
        w.text("      "); writeStatusLine(r, into: &w, names: &names, waits: waits); w.newline()
    }

    /// Writes the lines out and adds the counts to `total`.
    mutating func flush(into total: inout [ContributionStatus.State: Int]) {
        w.flush()
        for (state, n) in counts { total[state, default: 0] += n }
        counts = [:]
    }
}
