import DatanetAttribution
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import DatanetSync
import Foundation

/// `datanet model train|import|ls|show`.
func runModel(_ p: Parsed) throws -> Int32 {
    switch p.positionals.first {
    case "train":
        guard p.positionals.count == 2 else { throw CLIError.usage("model train takes one DATANET[@SIZE]") }
        return try runModelTrain(p)
    case "import": return try runModelImport(p)
    case "ls": return try runModelList(p)
    case "show": return try runModelShow(p)
    default: throw CLIError.usage("model takes train, import, ls or show (`datanet model --help`)")
    }
}

/// `datanet model train D[@SIZE] --kind knn`: the training set of a checkpoint made into a kNN
/// artifact (schema/model.md), stored as a blob and registered by a signed `model` record
/// (pending until sequenced). Training the same checkpoint with the same configuration gives
/// the same artifact id on every machine.
func runModelTrain(_ p: Parsed) throws -> Int32 {
    if p.options["--kind"] == "ngram" { return try runNgramTrain(p) }
    guard p.options["--kind"] == "knn" else { throw CLIError.usage("--kind takes knn or ngram, the trainers this build has") }
    let k = try p.options["--k"].map { text -> Int in
        guard let k = Int(text), k >= 1, k <= 10_000 else { throw CLIError.usage("--k takes 1 to 10000, not '\(terminalSafe(text))'") }
        return k
    } ?? 5
    let scale = try p.options["--scale"].map { text -> KNNModel.Scale in
        guard let s = KNNModel.Scale(rawValue: text) else { throw CLIError.usage("--scale takes standard or none, not '\(terminalSafe(text))'") }
        return s
    } ?? .standard
    let (ledger, st, size, me) = try trainingTarget(p)
    let bound = try checkpointBinding(ledger, st.id, at: size)
    let checkpoint = bound.size
    let set = try trainingSet(ledger, st, at: checkpoint, licenses: try licenseFilter(p))
    for l in set.summary.leftOut { errLine("datanet: left out \(l.contribution.prefix(16)): \(terminalSafe(l.reason))") }
    let kind: KNNArtifact.Kind
    switch p.options["--features"] {
    case "text": kind = .text
    case "numeric": kind = .numeric
    case nil:
        guard set.labeledTexts.isEmpty || set.numericRows.isEmpty else {
            throw CLIError.usage("the training set holds labeled text and numeric examples: choose one with --features text|numeric")
        }
        kind = set.numericRows.isEmpty ? .text : .numeric
    case let other?: throw CLIError.usage("--features takes text or numeric, not '\(terminalSafe(other))'")
    }
    let count = kind == .text ? set.labeledTexts.count : set.numericRows.count
    guard count > 0 else { throw CLIError.failure("the training set of \(st.policy.name) at \(checkpoint) has no \(kind == .text ? "labeled text" : "numeric") examples (`datanet dataset` shows what it holds)") }
    guard count <= KNNArtifact.maximumExamples else { throw CLIError.failure("\(count) examples: a kNN model holds at most \(KNNArtifact.maximumExamples)") }
    let artifact = KNNArtifact(set, kind: kind, k: k, scale: scale)
    let bytes = artifact.encoded
    // Nothing is stored that the decoder would refuse (a file name past its bound, …).
    do { _ = try KNNArtifact(encoded: bytes) } catch { throw CLIError.failure("the model cannot be stored: \(error)") }
    let name = p.options["--name"] ?? "\(st.policy.name.prefix(200))-\(checkpoint)-knn"
    var configuration: [(key: String, value: String)] = [("features", kind == .text ? "text" : "numeric"), ("k", "\(k)"),
                                                          ("kind", "knn"), ("scale", kind == .text ? "none" : scale.rawValue)]
    if let l = try licenseSetting(p) { configuration.append(("licenses", l)) }
    var record = ModelRecord(datanet: st.id, builder: me.publicKey, name: name, checkpointSize: checkpoint, checkpointRoot: bound.root,
                             trainer: KNNArtifact.trainerName, trainerVersion: "\(KNNArtifact.version)", configuration: configuration,
                             artifact: ObjectID(Digest.zero), artifactSize: 0, training: trainingCounts(set, examples: count, logSize: st.size),
                             createdAt: nowMillis())
    try checkRegistrable(record)
    let added = try storeBlob(ledger, bytes, named: name + ".knn")
    (record.artifact, record.artifactSize) = (added.id, added.size)
    let e = try ledger.registerModel(record, by: me.signingKey)
    let summary: [String: Any] = ["model": e.id.hex, "name": name, "status": "pending", "artifact": added.id.hex, "bytes": bytes.count, "datanet": st.id.hex, "checkpoint": checkpoint,
                                  "features": kind == .text ? "text" : "numeric", "k": k, "scale": kind == .text ? "none" : scale.rawValue,
                                  "examples": count, "contributions": set.contributions.count,
                                  "left_out": set.summary.leftOut.map { ["contribution": $0.contribution, "reason": $0.reason] }]
    if p.has("--json") { try printJSON(summary) } else {
        out("trained knn on \(terminalSafe(st.policy.name)) at checkpoint \(checkpoint): \(count) \(kind == .text ? "labeled text" : "numeric") example(s) from \(set.contributions.count) contribution(s), K \(k)")
        out("artifact \(added.id.hex) (\(bytes.count) bytes)")
        out("model \(e.id.hex) '\(terminalSafe(name))' pending (run `datanet sequence \(terminalSafe(st.policy.name))` as its sequencer to register it)")
    }
    return 0
}

/// Stores `bytes` as an added file (kept by gc like any other), written first to a file of its
/// own in the store's folder; returns what was added.
func storeBlob(_ ledger: Ledger, _ bytes: [UInt8], named name: String) throws -> AddResult {
    let path = storeDir + "/" + name.replacingOccurrences(of: "/", with: "_").prefix(64) + "-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw CLIError.failure("cannot create \(path)") }
    defer { unlink(path) }
    do {
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try handle.write(contentsOf: bytes)
        try handle.close()
    } catch { throw CLIError.failure("cannot write \(path): \(error)") }
    let added = try Ingest(store: ledger.store).add(paths: [path])[0]
    guard added.size == UInt64(bytes.count) else { throw CLIError.failure("the stored blob is \(added.size) bytes, not \(bytes.count)") }
    return added
}

/// A kNN artifact named by a model held here (record id, prefix or name), or stored by artifact
/// id, id prefix or added path; every chunk re-hashed as it is read. A model's artifact this
/// store lacks is fetched from the peers serving its Datanet, unless `offline`.
func loadArtifact(_ text: String, offline: Bool) throws -> (artifact: KNNArtifact, model: HeldModel?) {
    var ledger = try openLedgerForReading()
    let id: ObjectID
    let model = try findModel(ledger, text)
    if let m = model {
        guard m.record.trainer == KNNArtifact.trainerName else {
            throw CLIError.failure("model '\(terminalSafe(text))' was made by \(terminalSafe(m.record.trainer)), not a kNN trainer this command runs")
        }
        id = m.record.artifact
        if try !ledger.reader.holdsObject(id, kind: .blob) {
            if !offline { ledger = try openLedger() }
            _ = try fetchMissing(ledger, m.record.datanet, [(FetchItem(contribution: m.id, kind: .blob, root: id), m.record.artifactSize)],
                                 what: "model artifact", offline: offline)
        }
    } else {
        let t = try resolveContent(nil, ledger.store, text)
        guard t.kind == .blob else { throw CLIError.failure("'\(terminalSafe(text))' is not a stored model artifact") }
        id = t.id
    }
    guard let bytes = try ledger.store.blobBytes(id, limit: 1 << 34) else { throw CLIError.failure("the artifact of '\(terminalSafe(text))' (\(id.hex)) is not in this store") }
    do { return (try KNNArtifact(encoded: bytes), model) } catch { throw CLIError.failure("'\(terminalSafe(text))': \(error)") }
}

/// `datanet infer ARTIFACT --input TEXT|--file F`: the predicted label and the K neighbours that
/// decided it, with their contributions, contributors, distances and weights (parts per 10^9,
/// shared equally by the neighbours carrying the predicted label; schema/valuation.md "Weights").
func runInfer(_ p: Parsed) throws -> Int32 {
    let (artifact, held) = try loadArtifact(p.positionals[0], offline: p.has("--offline"))
    let recording = try p.has("--record") ? recordingModel(held, p.positionals[0]) : nil
    let input: String
    switch (p.options["--input"], p.options["--file"]) {
    case (let t?, nil): input = t
    case (nil, let f?):
        guard let d = FileManager.default.contents(atPath: f), let s = String(data: d, encoding: .utf8) else { throw CLIError.failure("cannot read \(f) as UTF-8 text") }
        input = s
    default: throw CLIError.usage("give the input with --input TEXT or --file F (one of them)")
    }
    let query: KNNModel.Query
    if artifact.kind == .text { query = .text(input) } else {
        let cells = input.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",", omittingEmptySubsequences: false)
        let values = cells.compactMap { TrainingContent.number($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == cells.count else { throw CLIError.usage("a numeric model takes its input as comma-separated numbers as the training CSV writes them") }
        query = .numeric(values)
    }
    let model = artifact.model
    let (label, near): (String, [(index: Int, distance: Double)])
    do { (label, near) = try model.predict(query) } catch { throw CLIError.failure("\(error)") }
    let weights = Weights.split(integers: near.map { model.labels[$0.index] == label ? 1 : 0 })
    let rows: [[String: Any]] = zip(near, weights).map { n, w in
        let e = artifact.examples[n.index], c = artifact.contributions[e.contribution]
        return ["contribution": c.id.hex, "contributor": c.author.description, "file": e.file, "line": e.line,
                "label": e.label, "distance": n.distance, "weight": w]
    }
    let record = try recording.map { m in
        try recordInference(m, contributions: artifact.contributions.map(\.id),
                            credited: near.filter { model.labels[$0.index] == label }.map { artifact.examples[$0.index].contribution },
                            input: input, label: label, k: model.k, features: artifact.kind == .text ? "text" : "numeric")
    }
    if p.has("--json") {
        var object: [String: Any] = ["label": label, "neighbours": rows]
        if let record { object["record"] = record.id.hex }
        try printJSON(object)
    } else {
        out("label: \(terminalSafe(label))")
        for r in rows {
            out("  \((r["contribution"] as! String).prefix(16))  \(terminalSafe(r["file"] as! String)):\(r["line"] as! Int)  \(terminalSafe(r["label"] as! String))  distance \(String(format: "%.6g", r["distance"] as! Double))  weight \(r["weight"] as! UInt64)")
        }
        if let record { out("attribution record \(record.id.hex)") }
    }
    return 0
}

/// `datanet value ARTIFACT --test FILE`: the KNN-Shapley value of every training example
/// against a labeled test file in the training format (schema/valuation.md), summed per
/// contribution and per contributor.
func runValue(_ p: Parsed) throws -> Int32 {
    let (artifact, held) = try loadArtifact(p.positionals[0], offline: p.has("--offline"))
    let recording = try p.has("--record") ? recordingModel(held, p.positionals[0]) : nil
    guard let testPath = p.options["--test"] else { throw CLIError.usage("give the labeled test examples with --test FILE (.jsonl or .csv)") }
    guard let data = FileManager.default.contents(atPath: testPath) else { throw CLIError.failure("cannot read \(testPath)") }
    let tests: [(query: KNNModel.Query, label: String)]
    do {
        switch try TrainingContent.read(name: testPath, bytes: Array(data)) {
        case .labeledText(let lines) where artifact.kind == .text: tests = lines.map { (.text($0.text), $0.label) }
        case .numeric(let names, let rows) where artifact.kind == .numeric:
            guard names == artifact.features else { throw CLIError.failure("\(testPath): its columns are not the model's (\(artifact.features.joined(separator: ", ")))") }
            tests = rows.map { (.numeric($0.values), $0.label) }
        default:
            throw CLIError.usage("\(testPath): a \(artifact.kind == .text ? "text" : "numeric") model takes a test file of \(artifact.kind == .text ? ".jsonl labeled text" : ".csv numeric examples")")
        }
    } catch let e as TrainingError { throw CLIError.failure("\(e)") }
    guard !tests.isEmpty else { throw CLIError.failure("\(testPath) holds no test examples") }
    let model = artifact.model
    var numbers = [String: Int32]()
    func number(_ label: String) -> Int32 { if let n = numbers[label] { return n }; numbers[label] = Int32(numbers.count); return numbers[label]! }
    let trainLabels = model.labels.map(number), testLabels = tests.map { number($0.label) }
    let queries = tests.map(\.query)
    let values = try KNNShapley.meanValues(trainLabels: trainLabels, testLabels: testLabels, k: model.k) { t in try model.distances(to: queries[t]) }
    var perContribution = [Double](repeating: 0, count: artifact.contributions.count)
    for (i, e) in artifact.examples.enumerated() { perContribution[e.contribution] += values[i] }
    var perContributor = [String: Double]()
    for (i, c) in artifact.contributions.enumerated() { perContributor[c.author.description, default: 0] += perContribution[i] }
    let record = try recording.map { m in
        try recordValuation(m, contributions: artifact.contributions.map(\.id), values: perContribution, test: Array(data), tests: tests.count, k: model.k)
    }
    if p.has("--json") {
        var object: [String: Any] = ["test_examples": tests.count, "k": model.k, "record": record?.id.hex ?? NSNull(),
            "contributions": artifact.contributions.enumerated().map { ["contribution": $0.element.id.hex, "contributor": $0.element.author.description, "value": perContribution[$0.offset]] as [String: Any] },
            "contributors": perContributor.sorted { $0.key < $1.key }.map { ["contributor": $0.key, "value": $0.value] as [String: Any] }]
        if p.has("--per-example") { object["examples"] = values }
        try printJSON(object)
        return 0
    }
    if p.has("--per-example") {
        var w = ""
        for v in values { w += String(format: "%.17g\n", v) }
        writeFD(1, w.utf8)
        if let record { errLine("valuation record \(record.id.hex)") }
        return 0
    }
    out("KNN-Shapley of \(values.count) training example(s) against \(tests.count) test example(s), K \(model.k):")
    for (i, c) in artifact.contributions.enumerated() { out("  \(c.id.hex.prefix(16))  \(String(format: "%+.9f", perContribution[i]))  by \(c.author.description.prefix(16))") }
    if let record { out("valuation record \(record.id.hex)") }
    return 0
}
