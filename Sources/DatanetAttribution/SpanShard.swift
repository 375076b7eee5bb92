import CIntrinsics
import DatanetCrypto
import DatanetRecords
import Glibc

/// One shard of a Datanet's span index (schema/spans.md "Shards"): the documents of the
/// contributions whose intakes fall in [from, to), joined with 0xFF after each, their suffix
/// array in entries of ⌈log2(n)/8⌉ bytes, and the tables that map a text position back to its
/// contribution, file and line. Read in place from a memory-mapped file (or bytes in memory).
public final class SpanShard: @unchecked Sendable {
    /// What a shard is bound to: a Datanet, the intake range it covers, and the checkpoint it
    /// was built at.
    public struct Binding: Equatable, Sendable {
        public var datanet: DatanetID, checkpointRoot: Digest, checkpointSize: UInt64, from: UInt64, to: UInt64
        public init(datanet: DatanetID, checkpointRoot: Digest, checkpointSize: UInt64, from: UInt64, to: UInt64) {
            (self.datanet, self.checkpointRoot, self.checkpointSize, self.from, self.to) = (datanet, checkpointRoot, checkpointSize, from, to)
        }
    }

    /// A contribution the shard's build considered: indexed, or left out (and why).
    public struct Contribution: Equatable, Sendable {
        public enum State: UInt64, Sendable { case indexed = 0, notHeld = 1, malformed = 2 }
        public var id: RecordID, intake: UInt64, state: State
        public init(id: RecordID, intake: UInt64, state: State) { (self.id, self.intake, self.state) = (id, intake, state) }
    }

    /// A document to index: its contribution (an index into the contributions), file, line
    /// (0 for a whole file) and UTF-8 bytes.
    public struct Document: Sendable {
        public var contribution: Int, path: String, line: Int, bytes: [UInt8]
        public init(contribution: Int, path: String, line: Int, bytes: [UInt8]) {
            (self.contribution, self.path, self.line, self.bytes) = (contribution, path, line, bytes)
        }
    }

    static let magic = Array("DNSPANS1".utf8)
    static let headerSize = 136, contributionSize = 48, documentSize = 32
    /// The most text one shard holds (2 GiB less what the sorter reserves).
    public static let maximumText = min(1 << 31, SuffixSorter.maximumLength)

    public let binding: Binding
    public let contributions: [Contribution]
    public let documentCount: Int
    /// Text bytes (documents and their separators) and the suffix array's entry width.
    public let textCount: Int, width: Int
    let base: UnsafeRawPointer
    /// The shard's size in bytes.
    public let length: Int
    /// The shard's bytes (valid while the shard lives).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }
    let documents: UnsafeRawPointer, strings: UnsafeRawPointer, stringCount: Int
    public let text: UnsafePointer<UInt8>
    let entries: UnsafeRawPointer
    private let release: () -> Void

    /// Bytes per suffix-array entry for a text of n bytes: the fewest bytes that hold n − 1
    /// (⌈log2(n)/8⌉, at least 1).
    public static func width(_ n: Int) -> Int {
        var w = 1
        while w < 8, n > 1 << (8 * w) { w += 1 }
        return w
    }

    /// Reads the shard in `bytes` (copied), checking its structure.
    public convenience init(bytes: [UInt8]) throws(SpanError) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: bytes.count) } }
        try self.init(UnsafeRawPointer(p), bytes.count) { p.deallocate() }
    }

    /// Maps the shard file at `path` read-only, checking its structure (not every entry: see
    /// `checkEntries`).
    public convenience init(mapping path: String) throws(SpanError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size >= SpanShard.headerSize else { throw .malformed("\(path) is not a span shard (too short)") }
        let size = Int(st.st_size)
        guard let m = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), m != MAP_FAILED else { throw .unreadable(path, String(cString: strerror(errno))) }
        try self.init(UnsafeRawPointer(m), size) { munmap(m, size) }
    }

    init(_ p: UnsafeRawPointer, _ count: Int, release: @escaping () -> Void) throws(SpanError) {
        self.release = release
        (base, length) = (p, count)
        func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        func digest(_ at: Int) -> Digest { Digest(UnsafeRawBufferPointer(start: p + at, count: 32))! }
        guard count >= Self.headerSize, UnsafeRawBufferPointer(start: p, count: 8).elementsEqual(Self.magic) else {
            release(); throw .malformed("not a span shard (no DNSPANS1 magic)")
        }
        binding = Binding(datanet: DatanetID(digest(8)), checkpointRoot: digest(40), checkpointSize: u64(72), from: u64(80), to: u64(88))
        let c = u64(96), d = u64(104), s = u64(112), n = u64(120), w = u64(128)
        // Each count bounded before any product, so no size below overflows.
        guard c <= 1 << 32, d <= 1 << 32, s <= 1 << 40, n <= UInt64(Self.maximumText), binding.from <= binding.to,
              w == UInt64(Self.width(Int(n))) else {
            release(); throw .malformed("a span shard's counts are out of bounds or its entry width is not ⌈log2(n)/8⌉")
        }
        func padded(_ x: Int) -> Int { (x + 7) & ~7 }
        let cAt = Self.headerSize, dAt = cAt + Int(c) * Self.contributionSize, sAt = dAt + Int(d) * Self.documentSize
        let tAt = sAt + padded(Int(s)), eAt = tAt + padded(Int(n))
        guard eAt + Int(n) * Int(w) == count else { release(); throw .malformed("a span shard of \(count) bytes does not hold what its header counts") }
        (documentCount, textCount, width, stringCount) = (Int(d), Int(n), Int(w), Int(s))
        (documents, strings, entries) = (p + dAt, p + sAt, p + eAt)
        text = (p + tAt).assumingMemoryBound(to: UInt8.self)
        var list = [Contribution]()
        list.reserveCapacity(Int(c))
        for i in 0..<Int(c) {
            let at = cAt + i * Self.contributionSize
            guard let state = Contribution.State(rawValue: u64(at + 40)) else { release(); throw .malformed("a span shard's contribution \(i) has an unknown state") }
            list.append(Contribution(id: RecordID(digest(at)), intake: u64(at + 32), state: state))
        }
        contributions = list
        try checkTables() // fully initialized: deinit releases the memory if this throws
    }

    deinit { release() }

    /// Where document k starts in the text, its contribution (an index), line and path.
    public func start(_ k: Int) -> Int { Int(truncatingIfNeeded: UInt64(littleEndian: documents.loadUnaligned(fromByteOffset: k * Self.documentSize, as: UInt64.self))) }
    public func contribution(ofDocument k: Int) -> Int {
        Int(UInt32(littleEndian: documents.loadUnaligned(fromByteOffset: k * Self.documentSize + 16, as: UInt32.self)))
    }
    public func line(_ k: Int) -> Int { Int(UInt32(littleEndian: documents.loadUnaligned(fromByteOffset: k * Self.documentSize + 20, as: UInt32.self))) }
    public func path(_ k: Int) -> String {
        let at = Int(truncatingIfNeeded: UInt64(littleEndian: documents.loadUnaligned(fromByteOffset: k * Self.documentSize + 8, as: UInt64.self)))
        let count = Int(UInt32(littleEndian: documents.loadUnaligned(fromByteOffset: k * Self.documentSize + 24, as: UInt32.self)))
        return String(decoding: UnsafeRawBufferPointer(start: strings + at, count: count), as: UTF8.self)
    }
    /// One past the last byte of document k (its separator's position).
    public func end(_ k: Int) -> Int { k + 1 < documentCount ? start(k + 1) - 1 : textCount - 1 }

    /// The document holding text position `p` (binary search over the starts).
    public func document(at p: Int) -> Int {
        var (lo, hi) = (0, documentCount)
        while lo + 1 < hi { let mid = (lo + hi) / 2; if start(mid) <= p { lo = mid } else { hi = mid } }
        return lo
    }

    /// Asks the cache for entry r ahead of its read (a hint: never faults, whatever r).
    @inline(__always) func prefetchEntry(_ r: Int) { datanet_prefetch(entries + r * width) }

    /// The suffix array's entry at rank r: the start of the r-th smallest suffix.
    @inline(__always) public func entry(_ r: Int) -> Int {
        let at = entries + r * width
        switch width {
        case 4: return Int(UInt32(littleEndian: at.loadUnaligned(as: UInt32.self)))
        case 1: return Int(at.load(as: UInt8.self))
        case 2: return Int(UInt16(littleEndian: at.loadUnaligned(as: UInt16.self)))
        default:
            var v = 0
            for i in (0..<width).reversed() { v = v << 8 | Int(at.load(fromByteOffset: i, as: UInt8.self)) }
            return v
        }
    }

    /// The documents' and contributions' tables: every document inside the text and ending at
    /// a separator, its path inside the strings, its contribution indexed; contributions in
    /// intake order inside [from, to). O(documents + contributions): checked on every open.
    func checkTables() throws(SpanError) {
        var previous: UInt64?
        for c in contributions {
            guard c.intake >= binding.from, c.intake < binding.to, previous.map({ c.intake > $0 }) ?? true else {
                throw .malformed("a span shard's contributions are not in intake order inside [\(binding.from), \(binding.to))")
            }
            previous = c.intake
        }
        guard documentCount > 0 || textCount == 0 else { throw .malformed("a span shard holds text but no documents") }
        var last = -1, lastContribution = 0
        for k in 0..<documentCount {
            let s = start(k), c = contribution(ofDocument: k)
            let reserved = documents.loadUnaligned(fromByteOffset: k * Self.documentSize + 28, as: UInt32.self)
            let pathAt = Int(truncatingIfNeeded: UInt64(littleEndian: documents.loadUnaligned(fromByteOffset: k * Self.documentSize + 8, as: UInt64.self)))
            let pathCount = Int(UInt32(littleEndian: documents.loadUnaligned(fromByteOffset: k * Self.documentSize + 24, as: UInt32.self)))
            guard s > last, s < textCount, k > 0 || s == 0, k == 0 || text[s - 1] == 0xFF, c < contributions.count, c >= lastContribution,
                  contributions[c].state == .indexed, reserved == 0, pathAt >= 0, pathAt <= stringCount, pathCount <= stringCount - pathAt else {
                throw .malformed("a span shard's document \(k) is out of order, outside the text or names no indexed contribution")
            }
            (last, lastContribution) = (s, c)
        }
        guard textCount == 0 || text[textCount - 1] == 0xFF else { throw .malformed("a span shard's text does not end with a separator") }
    }

    /// Every entry below n and each position once, and separators exactly at the documents'
    /// ends: O(n), run when a shard is materialized from its blob, not on every open.
    public func checkEntries() throws(SpanError) {
        var seen = [UInt64](repeating: 0, count: (textCount + 63) / 64)
        for r in 0..<textCount {
            let p = entry(r)
            guard p < textCount, seen[p >> 6] & (1 << UInt64(p & 63)) == 0 else { throw .malformed("a span shard's suffix array is not a permutation of its text positions") }
            seen[p >> 6] |= 1 << UInt64(p & 63)
        }
        var separators = 0
        for i in 0..<textCount where text[i] == 0xFF { separators += 1 }
        guard separators == documentCount else { throw .malformed("a span shard's text holds \(separators) separators for \(documentCount) documents") }
    }
}

/// Why a span index or shard could not be used.
public enum SpanError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case unreadable(String, String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case .malformed(let why): why
        case .unreadable(let path, let why): "cannot read \(path): \(why)"
        case .tooLarge(let why): why
        }
    }
}
