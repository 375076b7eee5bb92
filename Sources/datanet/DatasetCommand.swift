import DatanetAttribution
import DatanetLedger
import DatanetRecords
import Foundation

/// The training set of a Datanet at a checkpoint (schema/training.md): its accepted
/// contributions under no tombstone, in intake order, read into examples.
func trainingSet(_ ledger: Ledger, _ st: DatanetState, at size: UInt64?, licenses: Set<String>?) throws -> TrainingSet {
    let files = try ledger.acceptedFiles(st.id, at: size)
    var inputs = [TrainingInput]()
    var index = [RecordID: Int]()
    for f in files {
        if index[f.contribution] == nil {
            guard let e = try ledger.reader.record(f.contribution), case .contribution(let c) = try Record(e) else {
                throw CLIError.failure("contribution \(f.contribution.hex) of an accepted file is not in this store")
            }
            index[f.contribution] = inputs.count
            inputs.append(TrainingInput(id: f.contribution, author: c.author, license: c.license, files: []))
        }
        // Each file's bytes, every chunk re-hashed; a file this store does not hold is nil.
        if let size = try ledger.store.blob(f.content)?.size, size > 1 << 31 {
            throw CLIError.failure("\(f.path) holds \(size) bytes; training reads files of at most 2 GiB")
        }
        let bytes = try ledger.store.blobBytes(f.content, limit: 1 << 31)
        inputs[index[f.contribution]!].files.append((f.path, bytes))
    }
    return TrainingSet(inputs, licenses: licenses)
}

/// `--licenses SPDX,...`: the licenses a training set may draw on (nil: any).
func licenseFilter(_ p: Parsed) throws -> Set<String>? {
    guard let text = p.options["--licenses"] else { return nil }
    let ids = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard !ids.isEmpty, ids.allSatisfy({ !$0.isEmpty }) else { throw CLIError.usage("--licenses takes SPDX ids separated by commas, e.g. CC0-1.0,CC-BY-4.0") }
    return Set(ids)
}

/// `datanet dataset D[@SIZE]`: what the training set of a checkpoint holds and what was left out.
func runDataset(_ p: Parsed) throws -> Int32 {
    let ledger = try openLedgerForReading()
    let (st, size) = try datanetAt(ledger, p.positionals[0])
    let checkpoint = try ledger.reader.checkpoint(st.id, at: size).size
    let set = try trainingSet(ledger, st, at: checkpoint, licenses: try licenseFilter(p))
    let s = set.summary
    if p.has("--json") {
        let data = try JSONEncoder().encode(s)
        var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        object["datanet"] = st.id.hex
        object["checkpoint"] = checkpoint
        try printJSON(object)
        return 0
    }
    out("\(terminalSafe(st.policy.name)) at checkpoint \(checkpoint): \(s.included) of \(s.contributions) accepted contribution(s) in the training set, \(s.bytes) bytes")
    out("  \(s.documents) document(s), \(s.labeledTexts) labeled text example(s), \(s.numericRows) numeric example(s)"
        + (s.features.isEmpty ? "" : " of \(s.features.count) feature(s)") + (s.otherFiles > 0 ? "; \(s.otherFiles) file(s) of no training format" : ""))
    if !s.labels.isEmpty {
        out("  labels: " + s.labels.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(20)
            .map { "\(terminalSafe($0.key)) \($0.value)" }.joined(separator: ", ") + (s.labels.count > 20 ? ", … (\(s.labels.count) in all)" : ""))
    }
    if !s.licenses.isEmpty { out("  licenses: " + s.licenses.sorted { $0.key < $1.key }.map { "\(terminalSafe($0.key)) \($0.value)" }.joined(separator: ", ")) }
    for l in s.leftOut { errLine("datanet: left out \(l.contribution.prefix(16)): \(terminalSafe(l.reason))") }
    return 0
}
