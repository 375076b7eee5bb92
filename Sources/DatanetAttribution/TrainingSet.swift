import DatanetCrypto
import DatanetRecords

/// One contribution's content as a training set takes it (schema/training.md "The training set
/// of a checkpoint"): its id, author and license, and its files in tree order, each with its
/// bytes (nil when this store does not hold them: a records-only replica).
public struct TrainingInput: Sendable {
    public var id: RecordID, author: PublicKey, license: String
    public var files: [(path: String, bytes: [UInt8]?)]
    public init(id: RecordID, author: PublicKey, license: String, files: [(path: String, bytes: [UInt8]?)]) {
        (self.id, self.author, self.license, self.files) = (id, author, license, files)
    }
}

/// A contribution left out of a training set, and why.
public struct LeftOut: Codable, Equatable, Sendable {
    public var contribution: String, reason: String
}

/// What a training set holds (`datanet dataset`).
public struct TrainingSummary: Codable, Equatable, Sendable {
    /// Contributions given (accepted, not withdrawn) and those whose content is in the set.
    public var contributions = 0, included = 0
    /// Unlabeled documents (.txt, .md), labeled text examples (.jsonl lines), numeric examples (.csv rows).
    public var documents = 0, labeledTexts = 0, numericRows = 0
    /// Bytes of the files read, and files of no training format (left out of every example).
    public var bytes: UInt64 = 0, otherFiles = 0
    /// Examples per label, and contributions per license (of those included).
    public var labels = [String: Int](), licenses = [String: Int]()
    /// The numeric examples' feature names (the first CSV's, in header order), if any.
    public var features: [String] = []
    public var leftOut = [LeftOut]()
    public init() {}
}

/// The examples of a training set, each with its source, in training order (intake order,
/// then file order, then line).
public struct TrainingSet: Sendable {
    public var documents = [(source: ExampleSource, text: String)]()
    public var labeledTexts = [(source: ExampleSource, text: String, label: String)]()
    public var numericRows = [(source: ExampleSource, values: [Double], label: String)]()
    public var summary = TrainingSummary()
    /// The contributions included, by position: their id and author (an example's source
    /// names its contribution by this position).
    public var contributions = [(id: RecordID, author: PublicKey)]()

    /// Reads `inputs` (in intake order) into examples. A contribution whose license is not in
    /// `licenses` (when given), whose content is not held, or any of whose files breaks its
    /// format's rules is left out whole, with the reason; the rest go on.
    public init(_ inputs: [TrainingInput], licenses: Set<String>? = nil) {
        summary.contributions = inputs.count
        for input in inputs {
            if let licenses, !licenses.contains(input.license) {
                summary.leftOut.append(LeftOut(contribution: input.id.hex, reason: "license \(input.license) is not among --licenses"))
                continue
            }
            let at = contributions.count
            var docs = [(source: ExampleSource, text: String)](), texts = [(source: ExampleSource, text: String, label: String)]()
            var rows = [(source: ExampleSource, values: [Double], label: String)]()
            // The training set's features: the first CSV's columns (nil until one is read).
            var features: [String]? = summary.features.isEmpty ? nil : summary.features
            var bytes: UInt64 = 0, other = 0
            var problem: String?
            for (path, content) in input.files {
                guard let content else { problem = "\(path): content not in this store (`datanet fetch` it first)"; break }
                bytes += UInt64(content.count)
                do {
                    switch try TrainingContent.read(name: path, bytes: content) {
                    case .document(let text): docs.append((ExampleSource(contribution: at, file: path, line: 0), text))
                    case .labeledText(let lines): texts += lines.map { (ExampleSource(contribution: at, file: path, line: $0.line), $0.text, $0.label) }
                    case .numeric(let names, let found):
                        if features == nil { features = names }
                        guard names == features else {
                            problem = "\(path): its columns (\(names.joined(separator: ", "))) are not the training set's (\(features!.joined(separator: ", ")))"
                            break
                        }
                        rows += found.map { (ExampleSource(contribution: at, file: path, line: $0.line), $0.values, $0.label) }
                    case .other: other += 1
                    }
                } catch {
                    problem = "\(error)"
                }
                if problem != nil { break }
            }
            if let problem {
                summary.leftOut.append(LeftOut(contribution: input.id.hex, reason: problem))
                continue
            }
            contributions.append((input.id, input.author))
            documents += docs; labeledTexts += texts; numericRows += rows
            summary.features = features ?? []
            summary.included += 1
            summary.bytes += bytes
            summary.otherFiles += other
            summary.licenses[input.license, default: 0] += 1
            for t in texts { summary.labels[t.label, default: 0] += 1 }
            for r in rows { summary.labels[r.label, default: 0] += 1 }
        }
        summary.documents = documents.count
        summary.labeledTexts = labeledTexts.count
        summary.numericRows = numericRows.count
    }
}
