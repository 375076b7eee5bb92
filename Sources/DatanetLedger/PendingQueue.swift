import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// A Datanet's pending records, read in one ordered scan and stored flat: one buffer for all
/// envelopes and one array per field, so a queue of a million records costs a few allocations,
/// not millions.
struct PendingQueue {
    /// Each entry's pending number (its key is Datanet id ‖ number), in queue order.
    var numbers = [UInt64]()
    var ids = [RecordID]()
    /// Envelopes back to back; entry i spans `ends[i-1]..<ends[i]` (empty when its record is missing).
    var bytes = [UInt8]()
    var ends = [Int]()

    var count: Int { ids.count }

    func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i - 1])..<ends[i] }

    /// The pending key of entry i.
    func key(_ d: DatanetID, _ i: Int) -> [UInt8] { BigEndian.key(d, numbers[i]) }

    init() {}

    init(_ ledger: Ledger, _ txn: Transaction, _ d: DatanetID) throws {
        // Sized once from the table (all Datanets' entries: an upper bound, capped so a huge
        // table of other Datanets does not reserve without limit) so the buffers are not
        // regrown and copied while a million records stream in.
        let entries = min(try txn.count(ledger.pending), 1 << 24)
        numbers.reserveCapacity(entries); ids.reserveCapacity(entries); ends.reserveCapacity(entries)
        bytes.reserveCapacity(min(try txn.footprint(ledger.pending), 1 << 30))
        try txn.scanNumbered(ledger.pending, d) { n, v in
            guard let id = RecordID(UnsafeRawBufferPointer(rebasing: v.prefix(32))) else {
                throw LedgerError.corruptEntry(table: ledger.pending.name, key: Hex.encode(BigEndian.key(d, n)), why: "value is \(v.count) bytes, shorter than a record id")
            }
            numbers.append(n)
            ids.append(id)
            if v.count > 32 {
                bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: v[32...]))
            } else if let stored = try txn.get(ledger.records, ids[ids.count - 1]) {
                bytes.append(contentsOf: stored) // an entry written before pending carried records
            }
            ends.append(bytes.count)
            return true
        }
    }
}

/// The pending reviews a sequencing run counts, in the order first seen, stored flat.
struct PendingReviews {
    /// Queue entry of each review (its id, key and envelope bytes live there).
    var entries = [Int]()
    /// Reviewer keys, held inline for cheap hashing and comparison.
    var reviewers = [KeyID]()
    var accepts = [Bool]()
    /// Created-at of each review (0 when it has none): with its id, which of a curator's reviews counts.
    var createdAt = [UInt64]()
    /// Contribution ids of all reviews back to back; review i names `contributions[starts(i)..<ends[i]]`.
    var contributions = [RecordID]()
    var ends = [Int]()

    var count: Int { entries.count }

    func named(_ i: Int) -> ArraySlice<RecordID> { contributions[(i == 0 ? 0 : ends[i - 1])..<ends[i]] }

    mutating func append(entry: Int, reviewer: KeyID, accept: Bool, createdAt: UInt64, contributions ids: some Sequence<RecordID>) {
        entries.append(entry); reviewers.append(reviewer); accepts.append(accept); self.createdAt.append(createdAt)
        contributions.append(contentsOf: ids)
        ends.append(contributions.count)
    }

    /// Makes room for all of `parts` at once.
    mutating func reserve(_ parts: [PendingReviews]) {
        let n = count + parts.reduce(0) { $0 + $1.count }
        entries.reserveCapacity(n); reviewers.reserveCapacity(n); accepts.reserveCapacity(n); ends.reserveCapacity(n)
        createdAt.reserveCapacity(n)
        contributions.reserveCapacity(contributions.count + parts.reduce(0) { $0 + $1.contributions.count })
    }

    mutating func append(_ other: PendingReviews) {
        let base = contributions.count
        entries += other.entries; reviewers += other.reviewers; accepts += other.accepts; createdAt += other.createdAt
        contributions += other.contributions
        ends += other.ends.map { $0 + base }
    }

    /// Reads a review's fields straight from its stored envelope without building a CBOR tree.
    /// Returns false, reading nothing, when the envelope is another kind or any other shape
    /// than the one this build writes; the caller then decodes it in full, which names the
    /// problem if there is one. (Pending records were checked in full when proposed.)
    mutating func appendIfPlain(entry: Int, envelope: UnsafeRawBufferPointer, datanet d: DatanetID) -> Bool {
        guard envelope.count <= Envelope.maximumReviewSize else { return false }
        var s = CBOR.Scanner(envelope)
        guard (try? s.arrayCount()) == 4, (try? s.unsigned()) == Envelope.version,
              let kind = try? s.text(), kind.elementsEqual(RecordKind.review.rawValue.utf8),
              let body = try? s.bytes(), Self.signaturesArePlain(&s), s.isAtEnd else { return false }
        var b = CBOR.Scanner(body)
        guard let fields = try? b.mapCount(), fields == 5 || fields == 6,
              (try? b.unsigned()) == 0, let datanet = try? b.bytes(), datanet.elementsEqual(d.bytes),
              (try? b.unsigned()) == 1, let reviewer = try? b.bytes(), let reviewerKey = KeyID(reviewer),
              (try? b.unsigned()) == 2, let n = try? b.arrayCount(), n > 0 else { return false }
        let start = contributions.count
        var previous: RecordID?
        for _ in 0..<n {
            guard let raw = try? b.bytes(), let id = RecordID(raw), previous.map({ $0 < id }) ?? true else {
                contributions.removeSubrange(start...)
                return false
            }
            contributions.append(id)
            previous = id
        }
        guard (try? b.unsigned()) == 3, let verdict = try? b.unsigned(), verdict <= 1,
              (try? b.unsigned()) == 4, let reason = try? b.text(), reason.count <= 4096,
              fields == 5 || (try? b.unsigned()) == 5, let made = fields == 5 ? 0 : try? b.unsigned(), b.isAtEnd else {
            contributions.removeSubrange(start...)
            return false
        }
        entries.append(entry); reviewers.append(reviewerKey); accepts.append(verdict == 1); createdAt.append(made)
        ends.append(contributions.count)
        return true
    }

    /// A non-empty list of [32-byte key, 64-byte signature] pairs sorted by key, one per key.
    private static func signaturesArePlain(_ s: inout CBOR.Scanner) -> Bool {
        guard let n = try? s.arrayCount(), n > 0 else { return false }
        var previous: UnsafeRawBufferPointer?
        for _ in 0..<n {
            guard (try? s.arrayCount()) == 2, let key = try? s.bytes(), key.count == 32,
                  let sig = try? s.bytes(), sig.count == 64 else { return false }
            if let p = previous, !p.lexicographicallyPrecedes(key) { return false }
            previous = key
        }
        return true
    }
}

/// A queue split for sequencing: its reviews, and its other records decoded, both in queue order.
struct SortedQueue {
    var reviews = PendingReviews()
    /// Records other than reviews, decoded, or why they do not decode.
    var others = [(entry: Int, decoded: Result<(Envelope, Record), RecordError>)]()

    init() {}

    /// Sorts the entries of `queue` on every core. Reviews in the shape this build writes are
    /// read without decoding; everything else is decoded in full (and a review found that way
    /// joins the reviews in its place); a record that does not decode is kept with its error.
    init(_ queue: PendingQueue, datanet d: DatanetID) throws {
        let blocks = stride(from: 0, to: queue.count, by: 4096).map { $0..<min(queue.count, $0 + 4096) }
        let parts = try queue.bytes.withUnsafeBytes { all in
            try Parallel.map(blocks, grain: 1) { block -> SortedQueue in
                var part = SortedQueue()
                for i in block {
                    let r = queue.range(i)
                    if r.isEmpty { continue }
                    let bytes = UnsafeRawBufferPointer(rebasing: all[r])
                    if part.reviews.appendIfPlain(entry: i, envelope: bytes, datanet: d) { continue }
                    let decoded = Self.decode(Array(bytes))
                    if case .success((_, .review(let review))) = decoded {
                        part.reviews.append(entry: i, reviewer: KeyID(review.reviewer), accept: review.accept, createdAt: review.createdAt ?? 0,
                                            contributions: review.contributions)
                    } else {
                        part.others.append((i, decoded))
                    }
                }
                return part
            }
        }
        reviews.reserve(parts.map(\.reviews))
        for p in parts {
            reviews.append(p.reviews)
            others += p.others
        }
    }

    /// A stored envelope and its typed record, decoded in full.
    static func decode(_ bytes: [UInt8]) -> Result<(Envelope, Record), RecordError> {
        Result { () throws(RecordError) in
            let envelope = try Envelope(encoded: bytes)
            return (envelope, try Record(envelope))
        }
    }
}
