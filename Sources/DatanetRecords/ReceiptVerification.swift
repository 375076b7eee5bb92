import DatanetCrypto
import DatanetObjects
import Foundation

/// One check of a verification, with the checks it groups.
public struct VerificationCheck: Codable, Sendable, Equatable {
    /// `statement`: what a receipt cannot prove and takes on the sequencer's word (that no
    /// policy leaf outside the receipt's chain came first, the order of exact duplicates);
    /// `datanet audit`, or `verify --strict` where the log is held, checks it.
    public enum Status: String, Codable, Sendable { case pass, fail, notApplicable = "n/a", statement = "sequencer's statement" }
    public var name: String
    public var status: Status
    public var detail: String
    public var children: [VerificationCheck]

    public init(_ name: String, _ status: Status, _ detail: String = "", children: [VerificationCheck] = []) {
        (self.name, self.status, self.detail, self.children) = (name, status, detail, children)
    }

    /// False when this check or any below it failed.
    public var holds: Bool { status != .fail && children.allSatisfy(\.holds) }

    /// The names of this check and those below it that could not be checked here (n/a).
    public var notChecked: [String] { (status == .notApplicable ? [name] : []) + children.flatMap(\.notChecked) }

    /// The names of this check and those below it taken on the sequencer's word.
    public var statements: [String] { (status == .statement ? [name] : []) + children.flatMap(\.statements) }

    /// The same checks with every sequencer's statement marked checked, saying by what.
    package func confirmingStatements(_ how: String) -> VerificationCheck {
        var c = self
        if c.status == .statement { (c.status, c.detail) = (.pass, c.detail + "; " + how) }
        c.children = children.map { $0.confirmingStatements(how) }
        return c
    }
}

/// What `datanet verify` concludes about a receipt.
public struct ReceiptVerification: Codable, Sendable {
    /// The anchor the receipt was checked against, hex, or nil when none was given.
    public var anchor: String?
    public var anchored: Bool
    public var checks: [VerificationCheck]
    /// Every check holds (anchoring included).
    public var holds: Bool { anchored && checks.allSatisfy(\.holds) }
    /// What could not be checked here (n/a): never counted as checked, always named.
    public var notChecked: [String] { checks.flatMap(\.notChecked) }
    /// What holding takes on the sequencer's word (distinct check names, in order).
    public var takenOnTrust: [String] {
        var seen = Set<String>()
        return checks.flatMap(\.statements).filter { seen.insert($0).inserted }
    }
    /// Every check holds except, possibly, anchoring.
    public var holdsSelfContained: Bool {
        checks.allSatisfy { $0.name == ReceiptChecker.anchorCheckName ? $0.children.allSatisfy(\.holds) : $0.holds }
    }
}

/// What the verifying node holds of the receipt's Datanet, to judge consistency.
public struct HeldLog: Sendable {
    /// Size of the newest checkpoint held.
    public var size: UInt64
    /// This node's root at the receipt's checkpoint size, when its log reaches that far.
    public var rootAtReceiptSize: Digest?
    /// The contribution's tombstone leaf in this node's log, if it was withdrawn or taken down.
    public var tombstone: (index: UInt64, takedown: Bool)?
    public init(size: UInt64, rootAtReceiptSize: Digest?, tombstone: (index: UInt64, takedown: Bool)? = nil) {
        (self.size, self.rootAtReceiptSize, self.tombstone) = (size, rootAtReceiptSize, tombstone)
    }
}

/// A receipt leaf decoded and hashed.
package struct ParsedEntry {
    package let index: UInt64, leaf: Leaf, hash: Digest, proof: [Digest]
}

extension Receipt {
    /// Verifies everything the receipt claims (schema/receipt.md "Verification"). `anchor` is
    /// the Datanet the verifier trusts (its genesis id); `held` describes what the verifying node
    /// holds of that Datanet, if anything. A tombstone in that log fails the "not withdrawn"
    /// check unless `allowWithdrawn`: what was accepted then is still proven, but its content
    /// and label are erased and it earns nothing.
    public func verify(anchor: DatanetID?, held: HeldLog? = nil, allowWithdrawn: Bool = false) -> ReceiptVerification {
        var result = ReceiptVerification(anchor: anchor?.hex, anchored: false, checks: [])
        let parsed: (chain: [ParsedEntry], last: ParsedEntry?, intake: ParsedEntry, decision: ParsedEntry?, reviews: [ParsedEntry], cp: Checkpoint)
        do {
            func parse(_ e: Entry) throws -> ParsedEntry {
                guard let data = CanonicalBase64.decode(e.leaf) else { throw RecordError.malformed("leaf \(e.index) is not canonical base64") }
                let leaf = try Leaf(encoded: Array(data))
                guard try RecordView.leaf(leaf) == e.view else { throw RecordError.malformed("the view of leaf \(e.index) does not match its bytes") }
                let proof = try e.proof.map { s -> Digest in
                    guard let b = CanonicalBase64.decode(s), let d = Digest(bytes: b) else {
                        throw RecordError.malformed("a proof hash of leaf \(e.index) is not 32 bytes of canonical base64")
                    }
                    return d
                }
                return ParsedEntry(index: e.index, leaf: leaf, hash: Merkle.leafHash(Array(data)), proof: proof)
            }
            parsed = (try chain.map(parse), try last.map(parse), try parse(intake), try decision.map(parse),
                      try (reviews ?? []).map(parse), try Checkpoint.unverified(note: checkpoint))
        } catch {
            result.checks = [VerificationCheck("receipt is well-formed", .fail, "\(error)")]
            return result
        }
        result.checks.append(VerificationCheck("receipt is well-formed", .pass, "views match the bytes they are derived from"))
        var checker = ReceiptChecker(receipt: self, cp: parsed.cp, chain: parsed.chain)
        let genesis = checker.genesisCheck(anchor: anchor)
        result.anchored = genesis.anchored
        result.checks.append(genesis.check)
        guard let g = genesis.id else { return result }
        result.checks.append(checker.chainCheck(genesis: g))
        result.checks.append(checker.checkpointCheck(last: parsed.last))
        if let handoffs = checker.handoffsCheck() { result.checks.append(handoffs) }
        result.checks.append(checker.intakeCheck(parsed.intake, genesis: g))
        result.checks.append(checker.decisionCheck(parsed.decision, intake: parsed.intake, reviews: parsed.reviews, genesis: g))
        result.checks.append(checker.previousCheck())
        result.checks.append(Self.heldCheck(held, cp: parsed.cp))
        if let t = held?.tombstone {
            let what = "\(t.takedown ? "taken down" : "withdrawn") at leaf \(t.index) in this store's log"
            result.checks.append(VerificationCheck("not withdrawn", allowWithdrawn ? .pass : .fail,
                                                   allowWithdrawn ? "\(what) (allowed by --allow-withdrawn)"
                                                                  : "\(what): its content and label are erased (--allow-withdrawn accepts this)"))
        }
        return result
    }

    package static func heldCheck(_ held: HeldLog?, cp: Checkpoint) -> VerificationCheck {
        let name = "consistent with the newest checkpoint held"
        guard let held else { return VerificationCheck(name, .notApplicable, "this store holds no checkpoint of this Datanet") }
        guard let root = held.rootAtReceiptSize else {
            return VerificationCheck(name, .notApplicable, "this store's log (size \(held.size)) is shorter than the receipt's checkpoint (\(cp.size))")
        }
        return root == cp.root
            ? VerificationCheck(name, .pass, "this store's log (checkpoint size \(held.size)) has the receipt's root at size \(cp.size)")
            : VerificationCheck(name, .fail, "this store's log has another root at size \(cp.size): a fork (keep both checkpoints as evidence)")
    }
}
