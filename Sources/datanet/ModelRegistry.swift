import DatanetAttribution
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// A model held here named by record id, id prefix or name (registered before pending, then
/// the newest of that name by created-at); nil when the text names none. A full 64-digit id
/// is never read as a name (no log is scanned for it).
func findModel(_ ledger: Ledger, _ text: String) throws -> HeldModel? {
    if text.count >= 4, isHexPrefix(text) {
        if let id = RecordID(hex: text) { return try ledger.reader.model(id) }
        let models = try ledger.reader.recordIDs(prefix: text).compactMap { try ledger.reader.model($0) }
        if models.count > 1 { throw StoreError.ambiguous(prefix: text, matches: models.count) }
        if let m = models.first { return m }
    }
    return try ledger.reader.models(named: text).first
}

/// What `model train` trains on: the ledger, the Datanet of DATANET[@SIZE] (or --checkpoint
/// SIZE), the size asked for (nil: the newest), and the identity allowed to register the model.
func trainingTarget(_ p: Parsed) throws -> (Ledger, DatanetState, UInt64?, Identity) {
    let ledger = try openLedger()
    var (st, size) = try datanetAt(ledger, p.positionals[1])
    if let c = p.options["--checkpoint"] {
        guard size == nil, let n = UInt64(c) else { throw CLIError.usage("--checkpoint takes a size (or give DATANET@SIZE), not '\(terminalSafe(c))'") }
        size = n
    }
    return (ledger, st, size, try modelBuilder(st))
}

/// The checkpoint (size, root) of `d` at `size` (the newest when nil), from its signed note.
func checkpointBinding(_ ledger: Ledger, _ d: DatanetID, at size: UInt64?) throws -> (size: UInt64, root: Digest) {
    let (note, n) = try ledger.reader.checkpoint(d, at: size)
    return (n, try Checkpoint.unverified(note: note).root)
}

/// The identity that signs a model record of `st`, refused before anything is stored when it
/// may not register models there.
func modelBuilder(_ st: DatanetState) throws -> Identity {
    let me = try signer()
    guard st.policy.mayBuild(me.publicKey) else {
        throw LedgerRefusal.notABuilder(key: me.publicKey.description, datanet: st.policy.name)
    }
    return me
}

/// Refuses, before anything is stored, a model record its decoder or the text rules would
/// refuse (a name, trainer or setting past its bound or with a control character, an empty
/// license among the training set's, more than 256 licenses).
func checkRegistrable(_ r: ModelRecord) throws {
    try TextRules.checkSingleLine(r.name, field: "model name")
    try TextRules.checkSingleLine(r.trainer, field: "trainer")
    try TextRules.checkSingleLine(r.trainerVersion, field: "trainer version")
    for c in r.configuration { try TextRules.checkSingleLine(c.value, field: c.key) }
    do { _ = try ModelRecord(body: r.body) } catch { throw CLIError.failure("the model record cannot be made: \(error)") }
}

/// `--licenses` as a model's `licenses` setting: the SPDX ids trimmed, sorted, comma-joined.
func licenseSetting(_ p: Parsed) throws -> String? {
    try licenseFilter(p).map { $0.sorted().joined(separator: ",") }
}

/// The training counts a model record carries for `set`, read from a log of `logSize` leaves.
func trainingCounts(_ set: TrainingSet, examples: Int, logSize: UInt64) -> ModelRecord.TrainingCounts {
    .init(contributions: UInt64(set.contributions.count), examples: UInt64(examples), bytes: set.summary.bytes,
          licenses: Array(set.summary.licenses.keys), tombstonesBefore: logSize)
}

/// `model ls [DATANET] [--json]`: every model held here, registered or pending.
func runModelList(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let d = try p.positionals.dropFirst().first.map { try ledger.reader.resolveDatanet($0).id }
    let models = try ledger.reader.models(of: d)
    if p.has("--json") {
        try printJSON(models.map(modelJSON))
        return 0
    }
    if models.isEmpty { out("no models; train one with `datanet model train DATANET --kind knn`"); return 0 }
    for m in models {
        let r = m.record
        out("\(m.id.hex.prefix(16))  \(terminalSafe(r.name))  \(terminalSafe(r.trainer)) \(terminalSafe(r.trainerVersion))  checkpoint \(r.checkpointSize)  "
            + "\(humanBytes(r.artifactSize))  " + (m.leaf.map { "leaf \($0)" } ?? "pending"))
    }
    return 0
}

/// The JSON of a held model (the record's fields with its id and where it is).
func modelJSON(_ m: HeldModel) -> [String: Any] {
    let r = m.record
    return ["id": m.id.hex, "name": r.name, "datanet": r.datanet.hex, "builder": r.builder.description,
            "checkpoint": ["size": r.checkpointSize, "root": r.checkpointRoot.hex] as [String: Any],
            "trainer": r.trainer, "trainer_version": r.trainerVersion,
            "configuration": Dictionary(r.configuration.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }),
            "artifact": ["blob": r.artifact.hex, "size": r.artifactSize] as [String: Any],
            "training": ["contributions": r.training.contributions, "examples": r.training.examples, "bytes": r.training.bytes,
                         "licenses": r.training.licenses, "tombstones_before": r.training.tombstonesBefore] as [String: Any],
            "created_at": r.createdAt, "base": r.base?.hex ?? NSNull(), "leaf": m.leaf.map { $0 as Any } ?? NSNull(),
            "status": m.leaf == nil ? "pending" : "registered"]
}

/// `model show MODEL [--json]`.
func runModelShow(_ p: Parsed) throws -> Int32 {
    guard p.positionals.count == 2 else { throw CLIError.usage("model show takes one MODEL (a record id, prefix or name)") }
    let ledger = try openLedgerForReading()
    guard let m = try findModel(ledger, p.positionals[1]) else { throw CLIError.failure("no model '\(terminalSafe(p.positionals[1]))' here (`datanet model ls` lists them)") }
    var o = modelJSON(m)
    let held = (try? ledger.store.blob(m.record.artifact)) != nil
    o["artifact_held"] = held
    if p.has("--json") { try printJSON(o); return 0 }
    let r = m.record
    out("model \(m.id.hex)  '\(terminalSafe(r.name))'  " + (m.leaf.map { "registered at leaf \($0)" } ?? "pending (not yet sequenced)"))
    out("  datanet     \(r.datanet.hex)  checkpoint \(r.checkpointSize) (root \(r.checkpointRoot.hex.prefix(16))…)")
    out("  builder     \(r.builder.description)")
    out("  trainer     \(terminalSafe(r.trainer)) \(terminalSafe(r.trainerVersion)): " + r.configuration.map { "\(terminalSafe($0.key))=\(terminalSafe($0.value))" }.joined(separator: " "))
    out("  artifact    \(r.artifact.hex)  \(humanBytes(r.artifactSize))" + (held ? "" : "  (not in this store)"))
    out("  trained on  \(r.training.contributions) contribution(s), \(r.training.examples) example(s), \(humanBytes(r.training.bytes))"
        + (r.training.licenses.isEmpty ? "" : "; licenses \(r.training.licenses.map(terminalSafe).joined(separator: ", "))"))
    if let base = r.base { out("  base        \(base.hex)") }
    return 0
}

/// `model import FILE --datanet D --checkpoint SIZE --name NAME [--base MODEL]`: registers a model
/// trained elsewhere; its file is stored chunked, so a variant of a stored model costs only the
/// chunks it changed (reported).
func runModelImport(_ p: Parsed) throws -> Int32 {
    guard p.positionals.count == 2 else { throw CLIError.usage("model import takes one FILE") }
    guard let dText = p.options["--datanet"], let cText = p.options["--checkpoint"], let name = p.options["--name"] else {
        throw CLIError.usage("model import needs --datanet D, --checkpoint SIZE and --name NAME")
    }
    guard let size = UInt64(cText) else { throw CLIError.usage("--checkpoint takes a size, not '\(terminalSafe(cText))'") }
    let path = p.positionals[1]
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw CLIError.failure("\(path) is not a readable file") }
    let ledger = try openLedger()
    let st = try ledger.reader.resolveDatanet(dText)
    let me = try modelBuilder(st)
    let bound = try checkpointBinding(ledger, st.id, at: size)
    let base = try p.options["--base"].map { text -> RecordID in
        guard let m = try findModel(ledger, text) else { throw CLIError.failure("no model '\(terminalSafe(text))' here for --base") }
        return m.id
    }
    let set = try trainingSet(ledger, st, at: bound.size, licenses: try licenseFilter(p))
    let trainer = p.options["--trainer"] ?? "imported", version = p.options["--trainer-version"] ?? "unknown"
    var configuration = [(key: String, value: String)]()
    if let l = try licenseSetting(p) { configuration.append(("licenses", l)) }
    var record = ModelRecord(datanet: st.id, builder: me.publicKey, name: name, checkpointSize: bound.size, checkpointRoot: bound.root,
                             trainer: trainer, trainerVersion: version, configuration: configuration, artifact: ObjectID(Digest.zero), artifactSize: 0,
                             training: trainingCounts(set, examples: set.documents.count + set.labeledTexts.count + set.numericRows.count, logSize: st.size),
                             createdAt: nowMillis(), base: base)
    try checkRegistrable(record)
    let added = try Ingest(store: ledger.store).add(paths: [path])[0]
    guard added.kind == .blob else { throw CLIError.failure("\(path) is not a file") }
    (record.artifact, record.artifactSize) = (added.id, added.size)
    let e = try ledger.registerModel(record, by: me.signingKey)
    if p.has("--json") {
        try printJSON(["model": e.id.hex, "artifact": added.id.hex, "bytes": added.size, "new_bytes": added.newBytes,
                       "datanet": st.id.hex, "checkpoint": bound.size, "status": "pending"] as [String: Any])
    } else {
        out("model \(e.id.hex) '\(terminalSafe(name))' pending on \(terminalSafe(st.policy.name)) (run `datanet sequence` as its sequencer)")
        out("artifact \(added.id.hex): \(humanBytes(added.size)), \(humanBytes(added.newBytes)) new in this store")
    }
    return 0
}
