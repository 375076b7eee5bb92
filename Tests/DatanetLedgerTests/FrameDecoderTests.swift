import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
import DatanetTestSupport
@testable import DatanetRecords
import Testing

/// The bundle frame decoder works on buffers: fed a real bundle one byte at a time, all at
/// once, or one frame per buffer, it yields the same frames; every bound and check fires as soon
/// as the bytes that break it arrive.
@Suite struct FrameDecoderTests {
    /// Feeds `pieces` in order, collecting frames; returns them with the error, if any, and how
    /// many bytes had been fed when it was thrown.
    static func decode(_ pieces: [ArraySlice<UInt8>], finish: Bool = true) -> (frames: [[UInt8]], error: BundleError?, fedAtError: Int) {
        var d = BundleFrameDecoder()
        var frames = [[UInt8]](), fed = 0
        do throws(BundleError) {
            for piece in pieces {
                d.feed(piece)
                fed += piece.count
                loop: while true {
                    switch try d.next() {
                    case .item(let (type, payload)): frames.append([type.rawValue] + payload)
                    case .needMore(let n): precondition(n > 0); break loop
                    case .finished: break loop
                    }
                }
            }
            if finish { try d.finish() }
            return (frames, nil, fed)
        } catch { return (frames, error, fed) }
    }

    static func bundle() throws -> [UInt8] {
        let (w, _) = try BundleTests.world()
        return try BundleTests.export(w.ledger, w.datanet)
    }

    @Test func sameFramesHoweverTheBytesArrive() throws {
        let bytes = try Self.bundle()
        let whole = Self.decode([bytes[...]])
        #expect(whole.error == nil && whole.frames.count >= 8, "\(String(describing: whole.error))")
        let byByte = Self.decode(bytes.indices.map { bytes[$0..<$0 + 1] })
        #expect(byByte.error == nil && byByte.frames == whole.frames)
        // One frame per buffer: the magic, then each frame alone.
        var pieces = [bytes[0..<9]], at = 9
        for f in BundleTests.frames(bytes) { pieces.append(bytes[at..<at + f.count]); at += f.count }
        let perFrame = Self.decode(pieces)
        #expect(perFrame.error == nil && perFrame.frames == whole.frames)
        // Two frames straddling buffers of 7 bytes.
        let sevens = Self.decode(stride(from: 0, to: bytes.count, by: 7).map { bytes[$0..<min(bytes.count, $0 + 7)] })
        #expect(sevens.error == nil && sevens.frames == whole.frames)
        // The frames are the bundle's, as the fd reader and the test's own splitter see them.
        #expect(whole.frames == BundleTests.frames(bytes).dropLast().map { [$0[0]] + $0[5...] })
    }

    /// Each refusal, fed byte by byte: thrown as soon as the offending byte arrives.
    @Test func refusalsComeAsSoonAsTheirBytesArrive() throws {
        let bytes = try Self.bundle()
        func byByte(_ b: [UInt8], finish: Bool = true) -> (frames: [[UInt8]], error: BundleError?, fedAtError: Int) {
            Self.decode(b.indices.map { b[$0..<$0 + 1] }, finish: finish)
        }
        let magic = Array(bytes[0..<9])
        // A length over the bound: refused at its header's last byte, before any payload.
        let oversized = byByte(magic + [2, 0x7f, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 64))
        #expect(oversized.error == .malformed("a leaf frame of 2147483647 bytes exceeds \(BundleReader.maximumFrame)") && oversized.fedAtError == 14)
        let unknown = byByte(magic + [42, 0, 0, 0, 1, 0])
        #expect(unknown.error == .malformed("unknown frame type 42") && unknown.fedAtError == 14)
        let notABundle = byByte(Array("hello, world".utf8))
        #expect(notABundle.error == .malformed("not a Datanet bundle (bad magic or version)") && notABundle.fedAtError == 1)
        let truncated = byByte(Array(bytes.dropLast()))
        #expect(truncated.error == .truncated && truncated.fedAtError == bytes.count - 1)
        let trailing = byByte(bytes + [0])
        #expect(trailing.error == .malformed("bytes after the end frame"))
        var tampered = bytes
        tampered[bytes.count / 2] ^= 1
        let t = byByte(tampered)
        #expect(t.error != nil, "a flipped byte decoded")
        // A flipped payload byte passes every frame check and fails at the end frame's digest.
        let frames = BundleTests.frames(bytes)
        var flipped = frames
        flipped[1][flipped[1].count - 1] ^= 1
        let f = byByte([UInt8](magic) + flipped.joined())
        #expect(f.error == .tampered && f.fedAtError == bytes.count)
        #expect(byByte([]).error == .malformed("not a Datanet bundle (bad magic or version)"))
    }

    /// The sealed-bundle decoder, the same way: a bundle of several segments, sealed to two
    /// keys, opened by the second.
    @Test func sealedSegmentsHoweverTheBytesArrive() throws {
        var rng = SplitMix64(seed: 7)
        let plain = rng.bytes(2 * SealedBundle.segment + 12_345)
        let (a, b) = (try X25519PrivateKey(), try X25519PrivateKey())
        let sealed = try SealedBundleTests.seal(plain, to: [a, b])
        func open(_ pieces: [ArraySlice<UInt8>], finish: Bool = true) -> (plain: [UInt8], error: (any Error)?, fed: Int) {
            var d = SealedBundleDecoder(keys: [b])
            var out = [UInt8](), fed = 0
            do {
                for piece in pieces {
                    d.feed(piece)
                    fed += piece.count
                    loop: while true {
                        switch try d.next() {
                        case .item(let p): out += p
                        case .needMore, .finished: break loop
                        }
                    }
                }
                if finish { try d.finish() }
                return (out, nil, fed)
            } catch { return (out, error, fed) }
        }
        let whole = open([sealed[...]])
        #expect(whole.error == nil && whole.plain == plain)
        let oneByOne = open(sealed.indices.map { sealed[$0..<$0 + 1] })
        #expect(oneByOne.error == nil && oneByOne.plain == plain)
        // One piece per part: magic, version and count, each of the 4 entries, each segment.
        var cuts = [0, 10, 90, 170, 250, 330]
        var at = cuts.last!
        while at < sealed.count {
            let length = UInt32(sealed[at]) << 24 | UInt32(sealed[at + 1]) << 16 | UInt32(sealed[at + 2]) << 8 | UInt32(sealed[at + 3])
            let size = Int(length & ~SealedBundle.last)
            at += 4 + size + ChaChaPoly.tagSize
            cuts.append(at)
        }
        #expect(cuts.last == sealed.count && cuts.count == 6 + 3)
        let perPart = open(zip(cuts, cuts.dropFirst()).map { sealed[$0..<$1] })
        #expect(perPart.error == nil && perPart.plain == plain)
        // Refusals fed byte by byte, each at the byte that breaks the rule.
        func byByte(_ bytes: [UInt8]) -> (plain: [UInt8], error: (any Error)?, fed: Int) { open(bytes.indices.map { bytes[$0..<$0 + 1] }) }
        let notSealed = byByte(Array("DNBUNDLE".utf8))
        #expect(notSealed.error as? BundleError == .malformed("not a sealed bundle") && notSealed.fed == 3)
        var huge = Array(sealed[0..<cuts[5]]) + [0x00, 0x20, 0x00, 0x01] + [UInt8](repeating: 0, count: 64)
        let oversized = byByte(huge)
        #expect(oversized.error as? BundleError == .malformed("a sealed segment of \(2 * SealedBundle.segment + 1) bytes exceeds \(SealedBundle.segment)")
                && oversized.fed == cuts[5] + 4)
        huge[9] = 0
        #expect(byByte(huge).error as? BundleError == .malformed("a sealed bundle holds a power of two from 4 to \(SealedBundle.maximumRecipients) entries"))
        #expect(byByte(Array(sealed.dropLast())).error as? BundleError == .truncated)
        #expect(byByte(sealed + [0]).error as? BundleError == .malformed("bytes after the last sealed segment"))
        var flipped = sealed
        flipped[cuts[6] + 100] ^= 1
        let t = byByte(flipped)
        #expect(t.error as? BundleError == .unauthentic && t.plain == Array(plain.prefix(SealedBundle.segment - 8)))
        // Sealed to others: refused once the last recipient entry is in, before any segment.
        var stranger = SealedBundleDecoder(keys: [try X25519PrivateKey()])
        stranger.feed(sealed[0..<cuts[5]])
        #expect(throws: BundleError.refused("this bundle is sealed, and not to any identity in this store")) { try stranger.next() }
    }

    /// Seeded mutations of a real bundle (flipped, inserted, deleted and repeated bytes, cuts),
    /// each fed whole and in random pieces: never a trap, and the same frames and
    /// the same error whichever way the bytes arrive.
    @Test func mutatedBundlesDecodeAlikeInAnyPieces() throws {
        let bytes = try Self.bundle()
        var rng = SplitMix64(seed: 0xF4A3E)
        var refused = 0
        for round in 0..<1_500 {
            var b = bytes
            rng.mutate(&b)
            if rng.below(4) == 0 { b = Array(b.prefix(rng.below(b.count + 1))) } // cut
            var pieces = [ArraySlice<UInt8>](), at = 0
            while at < b.count { let n = 1 + rng.below(64); pieces.append(b[at..<min(b.count, at + n)]); at += n }
            let whole = Self.decode([b[...]]), split = Self.decode(pieces)
            #expect(whole.frames == split.frames && whole.error == split.error, "round \(round)")
            if whole.error != nil { refused += 1 }
        }
        #expect(refused > 1_000)
    }

    /// The sealed decoder under the same seeded mutations (a one-segment bundle sealed to two
    /// keys): never a trap, and the same plaintext and error whole and in random pieces.
    @Test func mutatedSealedBundlesDecodeAlikeInAnyPieces() throws {
        let (a, b) = (try X25519PrivateKey(), try X25519PrivateKey())
        let sealed = try SealedBundleTests.seal(Array("a small plain bundle".utf8), to: [a, b])
        var rng = SplitMix64(seed: 0x5EA1)
        func open(_ pieces: [ArraySlice<UInt8>]) -> (plain: [UInt8], error: String?) {
            var d = SealedBundleDecoder(keys: [b])
            var out = [UInt8]()
            do {
                for piece in pieces {
                    d.feed(piece)
                    loop: while true {
                        switch try d.next() {
                        case .item(let p): out += p
                        case .needMore, .finished: break loop
                        }
                    }
                }
                try d.finish()
                return (out, nil)
            } catch { return (out, "\(error)") }
        }
        var refused = 0
        for round in 0..<600 {
            var m = sealed
            rng.mutate(&m)
            var pieces = [ArraySlice<UInt8>](), at = 0
            while at < m.count { let n = 1 + rng.below(40); pieces.append(m[at..<min(m.count, at + n)]); at += n }
            let whole = open([m[...]]), split = open(pieces)
            #expect(whole.plain == split.plain && whole.error == split.error, "round \(round)")
            if whole.error != nil { refused += 1 }
        }
        #expect(refused > 500)
    }
}
