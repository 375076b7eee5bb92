import DatanetCrypto

/// Range-based set reconciliation in the Negentropy protocol V1 message format, byte for byte
/// as the reference implementation (hoytech/negentropy) writes it: the client `initiate`s,
/// each side answers with `reconcile` until the client has nothing more to say; the client
/// learns the ids only it has and those only the server has. schema/negentropy.md.
public struct Negentropy<Storage: NegentropyStorage> {
    public static var protocolVersion: UInt8 { 0x61 }
    static var idSize: Int { 32 }
    static var fingerprintSize: Int { 16 }
    /// Ranges of fewer than twice this many items are sent as id lists, larger ones split in this many.
    static var buckets: Int { 16 }

    enum Mode: UInt64 { case skip = 0, fingerprint = 1, idList = 2 }

    /// The items reconciled; a client may hand in a fresh snapshot of the same set between
    /// rounds (a stored set is read in one transaction a round, not across the network).
    public var items: Storage
    /// The most bytes a message may take (0: no limit); at least 4,096.
    public let frameSizeLimit: Int
    public private(set) var isInitiator = false
    private var lastTimestampIn: UInt64 = 0, lastTimestampOut: UInt64 = 0

    public init(_ items: Storage, frameSizeLimit: Int = 0) throws(NegentropyError) {
        guard frameSizeLimit == 0 || frameSizeLimit >= 4096 else { throw .frameSizeLimit(frameSizeLimit) }
        (self.items, self.frameSizeLimit) = (items, frameSizeLimit)
    }

    /// The client's first message.
    public mutating func initiate() throws(NegentropyError) -> [UInt8] {
        guard !isInitiator else { throw .alreadyInitiated }
        isInitiator = true
        lastTimestampOut = 0
        var out: [UInt8] = [Self.protocolVersion]
        try splitRange(0, try read { try items.itemCount() }, .infinity, into: &out)
        return out
    }

    /// Answers a message of the peer. A client gets nil when reconciliation is complete; each
    /// call adds to `have` the ids only this side holds and to `need` those only the peer
    /// holds (a client's only: a server learns nothing from reconciling).
    public mutating func reconcile(_ message: [UInt8], have: inout [Digest], need: inout [Digest]) throws(NegentropyError) -> [UInt8]? {
        var query = NegentropyReader(message)
        (lastTimestampIn, lastTimestampOut) = (0, 0)
        var full: [UInt8] = [Self.protocolVersion]
        let version = try query.byte()
        guard version >= 0x60 && version <= 0x6f else { throw .malformed("the protocol version byte is 0x\(String(version, radix: 16)), not 0x60–0x6f") }
        guard version == Self.protocolVersion else {
            if isInitiator { throw .version(version) }
            return full // a server answers a version it does not speak with its own
        }
        let storageSize = try read { try items.itemCount() }
        var prevBound = NegentropyBound(timestamp: 0)
        var prevIndex = 0
        var skip = false
        while !query.isAtEnd {
            var o = [UInt8]()
            let currBound = try decodeBound(&query)
            guard currBound >= prevBound else { throw .malformed("a range's upper bound is below the one before it") }
            guard let mode = Mode(rawValue: try query.varint()) else { throw .malformed("a range's mode is not 0, 1 or 2") }
            let lower = prevIndex
            var upper = max(lower, try read { try items.rank(below: currBound.key) })
            func doSkip(_ o: inout [UInt8]) {
                guard skip else { return }
                skip = false
                encodeBound(prevBound, into: &o)
                o += NegentropyVarint.encode(Mode.skip.rawValue)
            }
            switch mode {
            case .skip:
                skip = true
            case .fingerprint:
                let theirs = try query.bytes(Self.fingerprintSize)
                if theirs != (try read { try items.fingerprint(lower, upper) }) {
                    doSkip(&o)
                    try splitRange(lower, upper, currBound, into: &o)
                } else {
                    skip = true
                }
            case .idList:
                let n = try query.varint()
                guard n <= UInt64(query.remaining / Self.idSize) else { throw .malformed("an id list of \(n) ids is longer than the message") }
                var theirs = Set<Digest>()
                for _ in 0..<n {
                    let id = Digest(bytes: try query.bytes(Self.idSize))!
                    if isInitiator { theirs.insert(id) }
                }
                if isInitiator {
                    skip = true
                    try read {
                        try items.forEach(lower, upper) { item, _ in
                            if theirs.remove(item.id) == nil { have.append(item.id) }
                            return true
                        }
                    }
                    need += theirs.sorted()
                } else {
                    doSkip(&o)
                    var ids = [UInt8]()
                    var count: UInt64 = 0
                    var endBound = currBound
                    let sent = full.count
                    try read {
                        try items.forEach(lower, upper) { item, index in
                            if Self.exceeds(sent + ids.count, frameSizeLimit) {
                                endBound = NegentropyBound(item)
                                upper = index // the rest of the range is left to the closing fingerprint
                                return false
                            }
                            item.id.withUnsafeBytes { ids += $0 }
                            count += 1
                            return true
                        }
                    }
                    encodeBound(endBound, into: &o)
                    o += NegentropyVarint.encode(Mode.idList.rawValue)
                    o += NegentropyVarint.encode(count)
                    o += ids
                    full += o
                    o.removeAll()
                }
            }
            if Self.exceeds(full.count + o.count, frameSizeLimit) {
                // Past the frame limit: the rest of the set goes back as one fingerprint.
                encodeBound(.infinity, into: &full)
                full += NegentropyVarint.encode(Mode.fingerprint.rawValue)
                full += try read { try items.fingerprint(upper, storageSize) }
                break
            }
            full += o
            prevIndex = upper
            prevBound = currBound
        }
        return full.count == 1 && isInitiator ? nil : full
    }

    /// Whether a message of `n` bytes so far is past the frame `limit` (0: none), less the 200
    /// bytes the reference keeps for what closes it.
    private static func exceeds(_ n: Int, _ limit: Int) -> Bool { limit != 0 && n > limit - 200 }

    /// A read of the item set; its failure (a damaged store) is said as this side's own.
    private func read<T>(_ body: () throws -> T) throws(NegentropyError) -> T {
        do { return try body() } catch { throw .storage("\(error)") }
    }

    /// Describes items `lower ..< upper` up to `upperBound`: their ids when fewer than 32,
    /// else 16 fingerprints of near-equal buckets, each ending at the shortest bound between
    /// its last item and the next.
    private mutating func splitRange(_ lower: Int, _ upper: Int, _ upperBound: NegentropyBound, into o: inout [UInt8]) throws(NegentropyError) {
        let n = upper - lower
        if n < Self.buckets * 2 {
            encodeBound(upperBound, into: &o)
            o += NegentropyVarint.encode(Mode.idList.rawValue)
            o += NegentropyVarint.encode(UInt64(n))
            var ids = [UInt8]()
            try read {
                try items.forEach(lower, upper) { item, _ in
                    item.id.withUnsafeBytes { ids += $0 }
                    return true
                }
            }
            o += ids
            return
        }
        let per = n / Self.buckets, extra = n % Self.buckets
        var curr = lower
        for i in 0..<Self.buckets {
            let size = per + (i < extra ? 1 : 0)
            let fingerprint = try read { try items.fingerprint(curr, curr + size) }
            curr += size
            let next = curr == upper ? upperBound
                : NegentropyBound.minimal(between: try read { try items.item(at: curr - 1) }, and: try read { try items.item(at: curr) })
            encodeBound(next, into: &o)
            o += NegentropyVarint.encode(Mode.fingerprint.rawValue)
            o += fingerprint
        }
    }

    private mutating func encodeBound(_ b: NegentropyBound, into o: inout [UInt8]) {
        if b.timestamp == .max {
            lastTimestampOut = .max
            o.append(0)
        } else {
            // Bounds go out ascending; wrapping (as the reference's unsigned arithmetic does)
            // only matters for a peer's out-of-order input, which never reaches here intact.
            o += NegentropyVarint.encode(b.timestamp &- lastTimestampOut &+ 1)
            lastTimestampOut = b.timestamp
        }
        o += NegentropyVarint.encode(UInt64(b.prefix.count))
        o += b.prefix
    }

    private mutating func decodeBound(_ r: inout NegentropyReader) throws(NegentropyError) -> NegentropyBound {
        let encoded = try r.varint()
        let timestamp: UInt64
        if encoded == 0 || lastTimestampIn == .max {
            timestamp = .max
        } else {
            let (t, overflow) = (encoded - 1).addingReportingOverflow(lastTimestampIn)
            guard !overflow, t != .max else { throw .malformed("a bound's timestamp passes 2^64 − 2") }
            timestamp = t
        }
        lastTimestampIn = timestamp
        let length = try r.varint()
        guard length <= UInt64(Self.idSize) else { throw .malformed("a bound's id prefix is \(length) bytes, more than 32") }
        return NegentropyBound(timestamp: timestamp, prefix: try r.bytes(Int(length)))
    }
}

/// A range bound: a timestamp (2^64 − 1: infinity) and a prefix of an id (at most 32 bytes),
/// standing for that prefix followed by zero bytes.
struct NegentropyBound: Comparable {
    let timestamp: UInt64
    let prefix: [UInt8]
    /// The id bytes this bound stands for: its prefix, zero-filled to 32.
    private let padded: Digest

    static let infinity = NegentropyBound(timestamp: .max)

    init(timestamp: UInt64, prefix: [UInt8] = []) {
        (self.timestamp, self.prefix) = (timestamp, prefix)
        padded = Digest(bytes: prefix + [UInt8](repeating: 0, count: 32 - prefix.count))!
    }

    init(_ item: NegentropyItem) { (timestamp, prefix, padded) = (item.timestamp, item.id.bytes, item.id) }

    /// The item this bound stands for: items below it are exactly those that sort below this.
    var key: NegentropyItem { NegentropyItem(timestamp: timestamp, id: padded) }

    /// The shortest bound above `a` and at or below `b` (a < b, neighbours in the set).
    static func minimal(between a: NegentropyItem, and b: NegentropyItem) -> NegentropyBound {
        guard a.timestamp == b.timestamp else { return NegentropyBound(timestamp: b.timestamp) }
        let x = a.id.bytes, y = b.id.bytes
        var shared = 0
        while shared < 32 && x[shared] == y[shared] { shared += 1 }
        return NegentropyBound(timestamp: b.timestamp, prefix: Array(y[0..<min(32, shared + 1)]))
    }

    static func < (a: Self, b: Self) -> Bool { (a.timestamp, a.padded) < (b.timestamp, b.padded) }
    static func == (a: Self, b: Self) -> Bool { a.timestamp == b.timestamp && a.padded == b.padded }
}

/// Negentropy's varints: base 128, most significant group first, the high bit set on every
/// byte but the last.
enum NegentropyVarint {
    static func encode(_ value: UInt64) -> [UInt8] {
        var groups: [UInt8] = [UInt8(value & 0x7f)]
        var v = value >> 7
        while v != 0 { groups.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        return groups.reversed()
    }
}

/// Reads a Negentropy message, each failure a `NegentropyError.malformed` naming what ran short.
struct NegentropyReader {
    private let bytes: [UInt8]
    private var at = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { at == bytes.count }
    var remaining: Int { bytes.count - at }

    mutating func byte() throws(NegentropyError) -> UInt8 {
        guard at < bytes.count else { throw .malformed("the message ends early") }
        at += 1
        return bytes[at - 1]
    }

    mutating func bytes(_ n: Int) throws(NegentropyError) -> [UInt8] {
        guard n <= remaining else { throw .malformed("the message ends \(n - remaining) bytes early") }
        at += n
        return Array(bytes[at - n ..< at])
    }

    /// A varint of at most 64 bits (a longer one, or one with a leading zero group, is malformed).
    mutating func varint() throws(NegentropyError) -> UInt64 {
        var value: UInt64 = 0
        var first = true
        while true {
            let b = try byte()
            guard !(first && b == 0x80) else { throw .malformed("a varint starts with a zero group") }
            guard value >> 57 == 0 else { throw .malformed("a varint passes 64 bits") }
            value = value << 7 | UInt64(b & 0x7f)
            first = false
            if b & 0x80 == 0 { return value }
        }
    }
}

/// Why a Negentropy message was refused or a session could not go on.
public enum NegentropyError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    /// The server answered in a protocol version this client does not speak.
    case version(UInt8)
    case frameSizeLimit(Int)
    case alreadyInitiated
    /// This side's item set could not be read.
    case storage(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed reconciliation message: \(why)"
        case .version(let v): "the peer reconciles in protocol version \(Int(v) - 0x60), this build in version 1"
        case .frameSizeLimit(let n): "a frame size limit of \(n) bytes is below the 4,096 the protocol allows"
        case .alreadyInitiated: "reconciliation was already initiated"
        case .storage(let why): "the set to reconcile could not be read: \(why)"
        }
    }
}
