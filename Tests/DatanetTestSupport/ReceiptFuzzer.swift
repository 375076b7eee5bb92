import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import Foundation

/// What a run of seeded mutations found.
public struct FuzzOutcome: Sendable {
    /// Mutations the decoder or a check refused.
    public var refused = 0
    /// Mutations that still held (each must be equivalent to the original).
    public var held = 0
    /// Mutated inputs that held while saying something else than the original, described.
    public var failures = [String]()
    public init() {}

    public static func + (a: FuzzOutcome, b: FuzzOutcome) -> FuzzOutcome {
        var o = a
        o.refused += b.refused; o.held += b.held; o.failures += b.failures
        return o
    }
}

/// Seeded mutation of a real receipt (SQLite's habit): every field of the JSON (values, types,
/// missing, extra and repeated keys, huge and negative numbers, deep nesting, long strings),
/// the signed leaf bytes inside it (with their JSON view rebuilt, so the mutation reaches the
/// checks behind the well-formedness one), and raw bytes. Nothing may trap, and a mutated
/// receipt that verifies must parse to the original.
public struct ReceiptFuzzer: Sendable {
    public let good: Receipt
    public let anchor: DatanetID
    public let held: HeldLog?
    let bytes: [UInt8]
    let tree: JSONTree

    public init(good: Receipt, anchor: DatanetID, held: HeldLog? = nil) throws {
        (self.good, self.anchor, self.held) = (good, anchor, held)
        bytes = Array(try good.json)
        guard let t = JSONTree.parse(bytes) else { throw RecordError.malformed("the receipt does not parse as JSON") }
        tree = t
    }

    /// Runs `count` mutations from `seed`.
    public func run(seed: UInt64, count: Int) -> FuzzOutcome {
        var rng = SplitMix64(seed: seed)
        var outcome = FuzzOutcome()
        for round in 0..<count {
            let input: [UInt8]
            switch rng.below(10) {
            case 0...5:
                var t = tree
                for _ in 0...rng.below(3) { rng.mutate(&t) }
                input = t.serialized
            case 6, 7:
                input = mutateLeaf(&rng).serialized
            default:
                var b = bytes
                rng.mutate(&b)
                input = b
            }
            guard let r = try? Receipt(json: Data(input)) else { outcome.refused += 1; continue }
            let v = r.verify(anchor: anchor, held: held)
            guard v.holds else { outcome.refused += 1; continue }
            outcome.held += 1
            // Leaving the decision out (with the review leaves it cites, absent or an empty
            // list) makes a weaker receipt that is still true (intake only; `verify` marks the
            // decision n/a), so that alone is not a finding.
            var weaker = good
            weaker.decision = nil
            weaker.reviews = nil
            var weakerEmpty = weaker
            weakerEmpty.reviews = []
            if r != good && r != weaker && r != weakerEmpty {
                var differ = [String]()
                if r.datanet != good.datanet { differ.append("datanet") }
                if r.contribution != good.contribution { differ.append("contribution") }
                if r.checkpoint != good.checkpoint { differ.append("checkpoint \(r.checkpoint.debugDescription)") }
                if r.chain != good.chain { differ.append("chain") }
                func entry(_ name: String, _ a: Receipt.Entry?, _ b: Receipt.Entry?) {
                    guard a != b else { return }
                    guard let a, let b else { return differ.append(name) }
                    var parts = [String]()
                    if a.index != b.index { parts.append("index \(a.index)") }
                    if a.leaf != b.leaf { parts.append("leaf \(a.leaf.suffix(12))") }
                    if a.proof != b.proof { parts.append("proof \(a.proof.map { $0.suffix(6) })") }
                    if a.view != b.view { parts.append("view") }
                    differ.append("\(name): \(parts)")
                }
                entry("last", r.last, good.last)
                entry("intake", r.intake, good.intake)
                if r.decision != good.decision { differ.append("decision: \(String(describing: r.decision?.view))") }
                if r.previous != good.previous { differ.append("previous") }
                if r.reviews != good.reviews { differ.append("reviews: \(r.reviews.map { "\($0.count) entries" } ?? "none")") }
                if r.handoffs != good.handoffs { differ.append("handoffs: \(r.handoffs.map { "\($0.count) entries" } ?? "none")") }
                outcome.failures.append("seed \(seed) round \(round) differs in \(differ): \(String(decoding: input.prefix(300), as: UTF8.self))")
            }
        }
        return outcome
    }

    /// A leaf entry's bytes edited (CBOR bytes, or an index), its view rebuilt when it decodes.
    private func mutateLeaf(_ rng: inout SplitMix64) -> JSONTree {
        var t = tree
        var entries = [JSONTree.Path]()
        if case .object(let m) = t {
            for (i, e) in m.enumerated() {
                switch e.key {
                case "intake", "decision", "last": entries.append([i])
                case "chain": if case .array(let a) = e.value { entries += a.indices.map { [i, $0] } }
                default: break
                }
            }
        }
        guard !entries.isEmpty else { return t }
        t.edit(entries[rng.below(entries.count)]) { entry in
            guard case .object(var m) = entry, let li = m.firstIndex(where: { $0.key == "leaf" }),
                  case .string(let b64) = m[li].value, let data = Data(base64Encoded: b64) else { return }
            var leafBytes = Array(data)
            rng.mutate(&leafBytes, maxEdits: 2)
            m[li].value = .string(Data(leafBytes).base64EncodedString())
            if let leaf = try? Leaf(encoded: leafBytes), let view = try? RecordView.leaf(leaf),
               let encoded = try? JSONEncoder().encode(view), let vt = JSONTree.parse(Array(encoded)),
               let vi = m.firstIndex(where: { $0.key == "view" }) {
                m[vi].value = vt
            }
            entry = .object(m)
        }
        return t
    }
}
