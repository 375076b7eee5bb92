import DatanetCrypto
import Testing

/// Typed ids are the digest under another name: the same bytes, hex, ordering and layout, so
/// tables, wire formats and sorts cannot tell them apart. That one kind cannot be passed for
/// another is a compile-time property (docs/ARCHITECTURE.md, "Typed ids").
@Suite struct IDTests {
    enum Apples {}
    enum Pears {}

    static func digests(_ n: Int) -> [Digest] {
        (0..<n).map { SHA256.hash([UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)]) }
    }

    @Test func anIdIsItsDigest() throws {
        for d in Self.digests(50) {
            let id = ID<Apples>(d)
            #expect(id.digest == d && id.bytes == d.bytes && id.hex == d.hex && id.description == d.description)
            #expect(id.withUnsafeBytes { Array($0) } == d.bytes)
            #expect(ID<Apples>(hex: d.hex) == id && ID<Apples>(bytes: d.bytes) == id)
            #expect(d.withUnsafeBytes { ID<Apples>($0) } == id)
        }
        #expect(ID<Apples>(hex: String(repeating: "a", count: 63)) == nil && ID<Apples>(hex: String(repeating: "g", count: 64)) == nil)
        #expect(ID<Apples>(bytes: [UInt8](repeating: 1, count: 31)) == nil && ID<Apples>(bytes: [UInt8](repeating: 1, count: 33)) == nil)
        #expect([UInt8](repeating: 1, count: 33).withUnsafeBytes { ID<Apples>($0) } == nil)
    }

    @Test func idsSortAndHashAsTheirDigests() {
        let ds = Self.digests(500)
        let ids = ds.map(ID<Apples>.init)
        #expect(ids.sorted().map(\.digest) == ds.sorted())
        #expect(ids.sorted().map(\.bytes) == ds.map(\.bytes).sorted { $0.lexicographicallyPrecedes($1) })
        #expect(Set(ids).count == Set(ds).count)
        for (a, b) in zip(ids, ids.dropFirst()) {
            #expect((a < b) == (a.digest < b.digest) && (a == b) == (a.digest == b.digest))
            #expect(a.hashValue == ID<Apples>(a.digest).hashValue)
        }
    }

    @Test func kindsAreDistinctTypesOfTheSameLayout() {
        #expect(ObjectIdentifier(ID<Apples>.self) != ObjectIdentifier(ID<Pears>.self))
        #expect(ObjectIdentifier(ID<Apples>.self) != ObjectIdentifier(Digest.self))
        #expect(MemoryLayout<ID<Apples>>.size == MemoryLayout<Digest>.size)
        #expect(MemoryLayout<ID<Apples>>.stride == MemoryLayout<Digest>.stride)
        #expect(MemoryLayout<ID<Apples>>.alignment == MemoryLayout<Digest>.alignment)
        // Crossing kinds is spelled out, and keeps the bytes.
        let d = Self.digests(1)[0]
        #expect(ID<Pears>(ID<Apples>(d).digest).bytes == d.bytes)
    }

    /// A prefix of an id's hex appended to a buffer is the prefix of `Hex.encode`, odd lengths
    /// and more digits than the bytes hold included.
    @Test func hexPrefixesAppendAsEncodeWrites() {
        let bytes: [UInt8] = [0x00, 0x1f, 0xa0, 0xff]
        for count in [0, 1, 3, 8, 100] {
            var out: [UInt8] = [0x2a]
            bytes.withUnsafeBytes { Hex.append($0, digits: count, to: &out) }
            #expect(out == [0x2a] + Array(Hex.encode(bytes).utf8.prefix(count)), "\(count)")
        }
    }
}
