import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

func openLedger() throws -> Ledger {
    let store = try openStore()
    let fresh = try !Ledger.exists(in: store)
    let ledger = try Ledger(store: store)
    if fresh { createdLedger = ledger }
    return ledger
}

/// The ledger tables this run created on a store that had none: dropped again when the command
/// fails having written nothing (main.swift), so a refused command leaves the store as it was.
nonisolated(unsafe) var createdLedger: Ledger?

/// The ledger for a command that only reads: no writer lock, no write transaction, no upgrade
/// (an older store is read as it is, with a note), so it never waits for a writer.
func openLedgerForReading() throws -> Ledger {
    let ledger = try Ledger(store: try openStore(), create: false)
    if ledger.needsUpgrade {
        errLine("note: this store was written by an older datanet; it is read as it is, and the next command that writes upgrades it")
    }
    return ledger
}

/// A key given as 64 hex digits, the name of a local identity or contact, a public identity
/// file (`datanet id export`), or a unique hex prefix (at least 4 digits) of a key this store
/// knows: its identities, its contacts, and `known` (the keys of the policy in question).
func resolveKey(_ text: String, among known: [PublicKey] = []) throws -> PublicKey {
    if text.utf8.count == 64, let b = Hex.decode(text) {
        let key = try PublicKey(bytes: b)
        guard key.isUsable else { throw CLIError.usage("'\(text)' is not a usable Ed25519 public key (small order, mixed order or not canonical)") }
        return key
    }
    let ids = IdentityStore(storeDirectory: storeDir)
    let contacts = ContactBook(storeDirectory: storeDir)
    if Identity.isValidName(text) {
        if let id = try? ids.load(text) { return id.publicKey }
        if let c = try contacts.contact(named: text) { return c.publicKey }
    }
    // A public identity file, as `datanet id export` writes it (its X25519 certification checked).
    if text.contains("/") || text.hasSuffix(".json"), access(text, F_OK) == 0 {
        do { return try JSONDecoder().decode(PublicIdentity.self, from: try readInput(text)).verified() } catch {
            throw CLIError.usage("\(text) is not a valid public identity file (`datanet id export NAME`): \(error)")
        }
    }
    let lower = text.lowercased()
    if (4..<64).contains(lower.utf8.count), lower.utf8.allSatisfy({ Hex.nibble($0) != nil }) {
        let candidates = Set(ids.names().compactMap { try? ids.load($0).publicKey } + (try contacts.all()).map(\.publicKey) + known)
        let matches = candidates.filter { $0.description.hasPrefix(lower) }
        if matches.count == 1 { return matches.first! }
        if matches.count > 1 { throw CLIError.usage("the key prefix '\(text)' matches \(matches.count) keys; give more digits") }
    }
    throw CLIError.usage("'\(text)' is neither a 64-digit public key, an identity or contact name (`datanet id ls`), a public identity file, nor a unique prefix of a key this store knows")
}

/// Every key a policy names: where a key prefix given for a change of it is looked up.
func policyKeys(_ p: PolicyState) -> [PublicKey] {
    [p.owner, p.sequencer] + p.curators + (p.contributors ?? []) + (p.readers ?? []) + p.builders
}

func signer() throws -> Identity { try IdentityStore(storeDirectory: storeDir).resolve(signerName) }

/// The local identity holding `key`, if any.
func localIdentity(for key: PublicKey) -> Identity? {
    let ids = IdentityStore(storeDirectory: storeDir)
    return ids.names().lazy.compactMap { try? ids.load($0) }.first { $0.publicKey == key }
}

func nowMillis() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

/// A name for the identity made to sequence Datanet `name`: "NAME-sequencer" when that is a
/// valid identity name not yet taken here, else "sequencer-" and 12 random hex digits.
func sequencerIdentityName(for name: String) -> String {
    let taken = Set(IdentityStore(storeDirectory: storeDir).names())
    let readable = name + "-sequencer"
    if Identity.isValidName(readable), !taken.contains(readable) { return readable }
    return "sequencer-" + Hex.encode((0..<6).map { _ in UInt8.random(in: 0...255) })
}

func runCreate(_ p: Parsed) throws -> Int32 {
    // Before the ledger opens: a refusal must leave even a store without ledger tables as it was.
    try TextRules.checkSingleLine(p.positionals[0], field: "Datanet name")
    let ledger = try openLedger()
    let owner = try signer()
    let curators = try p.all("--curator").map { try resolveKey($0) }
    let quorum = UInt64(try integerOption(p, "--quorum") ?? 1)
    if p.has("--open") && !p.all("--allow").isEmpty { throw CLIError.usage("--open and --allow exclude each other") }
    let contributors: [PublicKey]? = p.all("--allow").isEmpty ? nil : try p.all("--allow").map { try resolveKey($0) }
    let readers: [PublicKey]? = p.has("--private") ? try [owner.publicKey] + p.all("--reader").map { try resolveKey($0) } : nil
    if !p.has("--private") && !p.all("--reader").isEmpty { throw CLIError.usage("--reader needs --private") }
    // The sequencer signs checkpoints all day (a hot key); the owner can replace it (a cold
    // key). Unless --sequencer names one, a new identity is made for it.
    let newSequencer = p.options["--sequencer"] == nil ? try Identity(name: sequencerIdentityName(for: p.positionals[0])) : nil
    let sequencer = try p.options["--sequencer"].map { try resolveKey($0) } ?? newSequencer!.publicKey
    let allCurators = curators.isEmpty ? [owner.publicKey] : curators
    guard quorum >= 1, quorum <= UInt64(allCurators.count) else {
        throw CLIError.usage("--quorum \(quorum) must be between 1 and the \(allCurators.count) curator(s)")
    }
    let policy = PolicyState(name: p.positionals[0], owner: owner.publicKey, sequencer: sequencer, curators: allCurators,
                             quorum: quorum, contributors: contributors, readers: readers,
                             maxPendingProposals: UInt64(try integerOption(p, "--max-pending") ?? 100),
                             maxPendingBytes: UInt64(try integerOption(p, "--max-pending-bytes") ?? (1 << 30)))
    var nonce = [UInt8](repeating: 0, count: 16)
    for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
    var genesis = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: nowMillis(), nonce: nonce).body)
    try genesis.sign(with: owner.signingKey)
    let identities = IdentityStore(storeDirectory: storeDir)
    if let newSequencer { try identities.save(newSequencer) }
    let id: DatanetID
    do {
        id = try ledger.create(genesis: genesis, sequencerKey: newSequencer?.signingKey ?? localIdentity(for: sequencer)?.signingKey)
    } catch {
        if let newSequencer { identities.remove(newSequencer.name) } // nothing it could sign was made
        throw error
    }
    if p.has("--json") {
        try printJSON(["id": id.hex, "name": policy.name, "sequencer": sequencer.description, "sequencer_identity": newSequencer?.name as Any? ?? NSNull()])
    } else {
        out("\(id.hex)  \(terminalSafe(policy.name))")
        if let newSequencer {
            out("sequencer: new identity \(newSequencer.name) (\(sequencer)); the owner key \(owner.name) stays out of daily signing. Back both up (`datanet id backup`).")
        }
    }
    return 0
}

func runContribute(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let author = try signer()
    var fields = ContributionFields(label: p.options["--label"], license: p.options["--license"], mediaType: p.options["--media-type"])
    for kv in p.all("--meta") {
        guard let eq = kv.firstIndex(of: "="), eq != kv.startIndex else { throw CLIError.usage("--meta needs key=value, got '\(kv)'") }
        fields.metadata[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
    }
    let plans = try grouped(try Ingest.plan(bytes: Array(p.rawPositionals.dropFirst())), p)
    let bar = ProgressBar(total: plans.reduce(0) { $0 + $1.node.totalBytes }, label: "contribute", quiet: p.has("--quiet"))
    let made: [(envelope: Envelope, added: AddResult)]
    do {
        made = try ledger.contribute(to: st.id, paths: plans, fields: fields, author: author.signingKey, createdAt: nowMillis()) { bar.update($0) }
    } catch { bar.finish(); throw error }
    bar.finish()
    let flags = try ledger.reader.duplicateFlags(try made.map { ($0.envelope.id, try Contribution(body: $0.envelope.body)) })
    // What the policy, as this store knows it, will hold back: the author's undecided
    // contributions and those queued here count against the per-author quota.
    let taken = try ledger.reader.quota(st.id, author: author.publicKey)
    // Nothing to count when every pending record together stays within the quota.
    let pending = try ledger.reader.pendingRecords(st.id)
    let queued = taken.count + UInt64(pending.count) <= st.policy.maxPendingProposals ? 0 : pending.filter { e in
        if case .contribution(let c)? = try? Record(e) { c.author == author.publicKey } else { false }
    }.count
    let limit = st.policy.maxPendingProposals
    if taken.count + UInt64(queued) > limit {
        let waiting = min(UInt64(made.count), taken.count + UInt64(queued) - limit)
        errLine("note: \(waiting) of these will wait in the queue: \(terminalSafe(st.policy.name)) takes in at most \(limit) undecided contributions per author "
                + "(\(taken.count) taken in, \(queued) queued here); they are taken in as earlier ones are decided. "
                + "`--as-one` makes one contribution of a folder; `--split-every N` groups files into folders of N.")
    }
    if p.has("--json") {
        try printJSON(zip(made, flags).map { m, f in
            ["id": m.envelope.id.hex, "content": m.added.id.hex, "path": m.added.path, "size": m.added.size,
             "exact_duplicate_of": f.flatMap { $0.exact ? $0.earlier.hex : nil } ?? NSNull(),
             "near_duplicate_of": f.flatMap { $0.exact ? nil : $0.earlier.hex } ?? NSNull()] as [String: Any]
        })
        return 0
    }
    // Ids are listed for a few contributions (or with -v); a bulk contribution gets the summary.
    if made.count <= 10 || p.has("-v") {
        var lines = ""
        for (m, f) in zip(made, flags) {
            lines += "\(m.envelope.id.hex)  \(terminalSafe(m.added.path))" + (f.map { "  [\($0.exact ? "exact duplicate" : "near-duplicate") of \($0.earlier.hex.prefix(12))]" } ?? "") + "\n"
        }
        writeFD(1, lines.utf8)
    }
    let exact = flags.filter { $0?.exact == true }.count, near = flags.filter { $0?.exact == false }.count
    var parts = ["\(made.count) queued for \(terminalSafe(st.policy.name))"]
    if exact > 0 { parts.append("\(exact) exact duplicate\(exact == 1 ? "" : "s") of earlier contributions (the sequencer will reject \(exact == 1 ? "it" : "them"))") }
    if near > 0 { parts.append("\(near) near-duplicate\(near == 1 ? "" : "s") (flagged for curators)") }
    if made.count > 10 && !p.has("-v") { parts.append("`datanet status \(terminalSafe(st.policy.name)) --mine` lists them") }
    out(parts.joined(separator: "; "))
    return 0
}

/// The contributions `contribute` makes of its paths: one per path, or with `--as-one` one
/// folder holding them all, or with `--split-every N` folders of N files each (the files of a
/// single folder given, else the paths given), named `<name>-part-K`.
func grouped(_ plans: [(path: String, node: SourceNode)], _ p: Parsed) throws -> [(path: String, node: SourceNode)] {
    let split = try integerOption(p, "--split-every")
    if split == 0 { throw CLIError.usage("--split-every needs at least 1") }
    guard p.has("--as-one") || split != nil else { return plans }
    if p.has("--as-one") && split != nil { throw CLIError.usage("give --as-one or --split-every, not both") }
    func base(_ path: String) -> String { normalizedPath(path).split(separator: "/").last.map(String.init) ?? "contribution" }
    var items: [(name: [UInt8], node: SourceNode)]
    var name = "contribution"
    if plans.count == 1, case .folder(_, let children) = plans[0].node {
        if p.has("--as-one") { return plans } // a folder already is one contribution
        (items, name) = (children, base(plans[0].path))
    } else {
        items = plans.map { (Array(base($0.path).utf8), $0.node) }
        if let twice = Dictionary(grouping: items.map(\.name), by: { $0 }).first(where: { $0.value.count > 1 }) {
            throw CLIError.usage("two paths are named '\(String(decoding: twice.key, as: UTF8.self))': one folder cannot hold both (contribute them separately)")
        }
        // Named after the folder the paths share, if they share one.
        let parents = Set(plans.map { normalizedPath(absolutePath($0.path) + "/..") })
        if plans.count == 1 { name = base(plans[0].path) } else if parents.count == 1, let only = parents.first, only != "/" { name = base(only) }
    }
    let size = split ?? max(1, items.count)
    let parts = stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min(items.count, $0 + size)]) }
    if parts.count == 1 && p.has("--as-one") { return [(name, .folder(path: [], children: parts[0]))] }
    let width = String(parts.count).count
    return parts.enumerated().map { k, part in
        ("\(name)-part-" + String(repeating: "0", count: width - String(k + 1).count) + String(k + 1), .folder(path: [], children: part))
    }
}

func runReview(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    // `--accept|--reject ID...`, or the older form with the verdict as the last word.
    var words = Array(p.positionals.dropFirst())
    let verdict: String
    switch (p.has("--accept"), p.has("--reject")) {
    case (true, true): throw CLIError.usage("give --accept or --reject, not both")
    case (true, false): verdict = "accept"
    case (false, true): verdict = "reject"
    case (false, false):
        guard let last = words.last, last == "accept" || last == "reject" else {
            throw CLIError.usage("`datanet review` needs --accept or --reject (or accept|reject as the last word)")
        }
        verdict = last
        words.removeLast()
    }
    if let source = p.options["--ids-from"] {
        let data = source == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try readInput(source)
        words += String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).map(String.init)
    }
    let ids = try words.map { w in
        let (id, note) = try resolveContribution(ledger, w)
        if let note { out(note) }
        return id
    }
    guard !ids.isEmpty else { throw CLIError.usage("`datanet review` needs at least one contribution id") }
    let e = try ledger.review(st.id, contributions: ids, accept: verdict == "accept", reason: p.options["--reason"] ?? "", createdAt: nowMillis(), by: try signer().signingKey)
    out("\(e.id.hex)  \(verdict) \(ids.count) contribution(s)")
    return 0
}

/// A record id from a unique hex prefix among the records this store holds.
func resolveRecord(_ ledger: Ledger, _ text: String) throws -> RecordID {
    if let d = RecordID(hex: text) { return d }
    let matches = try ledger.reader.recordIDs(prefix: text)
    guard matches.count == 1 else {
        throw matches.isEmpty ? StoreError.notFound(id: text) : StoreError.ambiguous(prefix: text, matches: matches.count)
    }
    return matches[0]
}

func runPolicy(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    let op = p.positionals[1]
    guard p.positionals.count == 3 else { throw CLIError.usage("`datanet policy DATANET \(op)` takes one value") }
    let value = p.positionals[2]
    func keySet(_ list: [PublicKey]?, adding k: PublicKey?, removing r: PublicKey?) -> [PublicKey] {
        var s = Set(list ?? [])
        if let k { s.insert(k) }
        if let r { s.remove(r) }
        return s.sorted()
    }
    if op == "set-sequencer" {
        let e = try ledger.proposeSequencer(st.id, key: try resolveKey(value, among: policyKeys(st.policy)), by: try signer().signingKey)
        out("\(e.id.hex)  set-sequencer (pending; needs the owner or a curator quorum)")
        return 0
    }
    let known = ["add-curator", "remove-curator", "allow", "deny", "add-reader", "remove-reader", "add-builder", "remove-builder", "quorum", "visibility"]
    guard known.contains(op) else {
        throw CLIError.usage("unknown policy change '\(op)' (add-curator, remove-curator, allow, deny, add-reader, remove-reader, add-builder, remove-builder, quorum, visibility, set-sequencer)")
    }
    let e = try ledger.proposePolicy(st.id, summary: "\(op) \(value)", by: try signer().signingKey) { next in
        switch op {
        case "add-curator": next.curators = keySet(next.curators, adding: try resolveKey(value, among: policyKeys(st.policy)), removing: nil)
        case "remove-curator": next.curators = keySet(next.curators, adding: nil, removing: try resolveKey(value, among: policyKeys(st.policy)))
        case "add-builder": next.builders = keySet(next.builders, adding: try resolveKey(value, among: policyKeys(st.policy)), removing: nil)
        case "remove-builder": next.builders = keySet(next.builders, adding: nil, removing: try resolveKey(value, among: policyKeys(st.policy)))
        case "allow": next.contributors = keySet(next.contributors, adding: try resolveKey(value, among: policyKeys(st.policy)), removing: nil)
        case "deny":
            // An open Datanet has no list to take a key out of; an empty list would shut everyone out.
            guard let allowed = next.contributors else {
                throw CLIError.failure("\(terminalSafe(st.policy.name)) is open to every contributor: there is no allow list to deny from (`allow` a key first to close it)")
            }
            next.contributors = keySet(allowed, adding: nil, removing: try resolveKey(value, among: policyKeys(st.policy)))
            guard next.contributors?.isEmpty == false || allowed.isEmpty else {
                throw CLIError.failure("denying \(value) would leave nobody allowed to contribute to \(terminalSafe(st.policy.name))")
            }
        case "add-reader", "remove-reader":
            // A public Datanet has no reader list; making one here would also lock the owner out.
            guard let readers = next.readers else {
                throw CLIError.failure("\(terminalSafe(st.policy.name)) is public: everyone may read it (`visibility private` first to keep a reader list)")
            }
            let k = try resolveKey(value, among: policyKeys(st.policy))
            next.readers = op == "add-reader" ? keySet(readers, adding: k, removing: nil) : keySet(readers, adding: nil, removing: k)
        case "quorum":
            guard let q = UInt64(value) else { throw CLIError.usage("quorum needs a number") }
            next.quorum = q
        default: // visibility
            guard value == "public" || value == "private" else { throw CLIError.usage("visibility is public or private") }
            next.readers = value == "public" ? nil : (next.readers ?? [next.owner])
        }
    }
    out("\(e.id.hex)  \(op) \(value) (pending)")
    return 0
}

func runSign(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let id = try resolveRecord(ledger, p.positionals[0])
    guard var e = try ledger.reader.record(id) else { throw StoreError.notFound(id: p.positionals[0]) }
    try e.sign(with: try signer().signingKey)
    try ledger.addSignatures(e)
    out("\(id.hex)  now signed by \(e.signatures.count) key(s)")
    return 0
}

func runSequence(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    guard let key = localIdentity(for: st.policy.sequencer) else {
        throw CLIError.failure("this store holds no identity with the sequencer key of \(terminalSafe(st.policy.name)) (\(st.policy.sequencer))")
    }
    let r = try ledger.sequence(st.id, key: key.signingKey)
    if p.has("--json") {
        try printJSON(["size": r.size, "checkpoint": r.checkpoint,
                       "intakes": r.intakes.map { ["record": $0.record.hex, "index": $0.index, "promise_signature": Hex.encode($0.promise.signature.bytes)] as [String: Any] },
                       "decisions": r.decisions.map { ["contribution": $0.contribution.hex, "index": $0.index, "accepted": $0.accepted, "reason": $0.reason] as [String: Any] },
                       "policies": r.policies.map { ["record": $0.record.hex, "index": $0.index] as [String: Any] },
                       "tombstones": r.tombstones.map { ["contribution": $0.contribution.hex, "index": $0.index] as [String: Any] },
                       "models": r.models.map { ["record": $0.record.hex, "index": $0.index] as [String: Any] },
                       "refused": r.refused.map { ["record": $0.record.hex, "reason": $0.reason] },
                       "deferred": r.deferred.map { ["record": $0.record.hex, "undecided": $0.count, "undecided_bytes": $0.bytes] as [String: Any] }])
    } else {
        // One summary line by default (refusals are listed: they need someone to act); -v lists every leaf.
        if p.has("-v") {
            for i in r.intakes { out("intake    \(i.index)  \(i.record.hex)  (promise signed)") }
            for pl in r.policies { out("policy    \(pl.index)  \(pl.record.hex)") }
            for d in r.decisions { out("decision  \(d.index)  \(d.contribution.hex)  \(d.accepted ? "accepted" : "rejected"): \(terminalSafe(d.reason))") }
            for t in r.tombstones { out("tombstone \(t.index)  \(t.contribution.hex)  (content and sidecar to be dropped: run `datanet gc`)") }
            for m in r.models { out("model     \(m.index)  \(m.record.hex)") }
        }
        for x in r.refused { out("refused   \(x.record.hex)  \(terminalSafe(x.reason))") }
        out(sequenceSummary(r, before: st.size))
    }
    return 0
}

func runContinue(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(p.positionals[0])
    guard let size = try integerOption(p, "--size"), let rootText = p.options["--root"], let seqText = p.options["--sequencer"] else {
        throw CLIError.usage("`datanet continue` needs --size N --root R --sequencer KEY")
    }
    guard let root = Digest(hex: rootText) ?? Data(base64Encoded: rootText).flatMap({ Digest(bytes: $0) }) else {
        throw CLIError.usage("--root must be a 32-byte hash in hex or base64")
    }
    let sequencer = try resolveKey(seqText)
    let owner = try signer()
    var e = Envelope(kind: .continuation, body: Continuation(datanet: st.id, size: UInt64(size), root: root, sequencer: sequencer).body)
    try e.sign(with: owner.signingKey)
    guard let local = localIdentity(for: sequencer) else {
        throw CLIError.failure("this store does not hold the new sequencer key; run `datanet continue` on the new sequencer's store")
    }
    _ = try ledger.applyContinuation(e, key: local.signingKey)
    out("\(e.id.hex)  continuation at size \(size): \(local.name) now sequences \(terminalSafe(st.policy.name))")
    return 0
}

/// "104 taken in, 10 rejected as exact duplicates, 94 decided (90 accepted, 4 rejected), …;
/// checkpoint size 209 (leaves 0–208)": what a sequencing run did, in one line.
func sequenceSummary(_ r: SequenceReport, before: UInt64) -> String {
    let duplicates = r.decisions.filter { !$0.accepted && $0.reason.hasPrefix("duplicate of ") }.count
    let decided = r.decisions.count - duplicates
    let accepted = r.decisions.filter(\.accepted).count
    var parts = ["\(r.intakes.count) taken in"]
    if duplicates > 0 { parts.append("\(duplicates) rejected as exact duplicate\(duplicates == 1 ? "" : "s")") }
    parts.append("\(decided) decided" + (decided > 0 ? " (\(accepted) accepted, \(decided - accepted) rejected)" : ""))
    if !r.policies.isEmpty { parts.append("\(r.policies.count) policy change\(r.policies.count == 1 ? "" : "s")") }
    if !r.tombstones.isEmpty { parts.append("\(r.tombstones.count) withdrawn or taken down") }
    if !r.models.isEmpty { parts.append("\(r.models.count) model\(r.models.count == 1 ? "" : "s") registered") }
    if !r.refused.isEmpty { parts.append("\(r.refused.count) refused") }
    if !r.deferred.isEmpty { parts.append("\(r.deferred.count) deferred (over their author's quota: taken in once earlier ones are decided)") }
    let range = r.size > before ? "new leaves \(before)–\(r.size - 1)" : "no new leaf"
    return parts.joined(separator: ", ") + "; checkpoint size \(r.size) (\(range))"
}
