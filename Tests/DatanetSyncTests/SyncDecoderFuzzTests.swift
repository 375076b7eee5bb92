import DatanetCrypto
@testable import DatanetSync
import DatanetTestSupport
import Testing

/// Seeded mutations of every transport decoder's real inputs: certificates, handshake
/// messages and channel streams. Every mutant is refused (the decoders throw only typed
/// `NoiseError`s) or, where the mutation changed nothing, read as the original; none traps.
@Suite struct SyncDecoderFuzzTests {
    static let now: UInt64 = 1_800_000_000

    @Test func mutatedCertificatesAreRefusedOrUnchanged() throws {
        let id = try SigningKey()
        let key = try TransportCertificate.transportKey(of: id).publicKey
        let cert = try TransportCertificate(identity: id, transportKey: key, expiry: Self.now + 60)
        var rng = SplitMix64(seed: 0xce27)
        var refused = 0
        for _ in 0..<20_000 {
            var b = cert.encoded
            rng.mutate(&b)
            guard let read = try? TransportCertificate(encoded: b) else { refused += 1; continue }
            do {
                try read.verify(transportKey: key, now: Self.now)
                #expect(read == cert, "a mutant verified: \(Hex.encode(b))")
            } catch { refused += 1 }
        }
        #expect(refused > 19_000)
    }

    /// Each handshake message mutated in flight: a handshake with any changed byte never
    /// completes (the change may surface at a later message: message 1 is not encrypted, but
    /// the handshake hash covers it), and one left unchanged always does.
    @Test func mutatedHandshakeMessagesNeverComplete() throws {
        var rng = SplitMix64(seed: 0x4a5d)
        for step in 0..<3 {
            for _ in 0..<300 {
                var i = try PeerHandshake(role: .initiator, identity: try SigningKey(), now: Self.now)
                var r = try PeerHandshake(role: .responder, identity: try SigningKey(), now: Self.now)
                var changed = false, failed = false
                for k in 0..<3 {
                    var m = k % 2 == 0 ? try i.write() : try r.write()
                    if k == step {
                        let original = m
                        rng.mutate(&m)
                        changed = m != original
                    }
                    do {
                        if k % 2 == 0 { try r.read(m) } else { try i.read(m) }
                    } catch {
                        failed = true  // a typed NoiseError: the handshake ends
                        break
                    }
                }
                #expect(failed == changed, "message \(step): changed \(changed), failed \(failed)")
                if !failed { #expect(i.peer != nil && r.peer != nil) }
            }
        }
    }

    /// A channel stream mutated anywhere: the receiver's messages are a prefix of what was
    /// sent, then (if anything changed) a typed error.
    @Test func mutatedStreamsYieldAPrefixThenAnError() throws {
        var rng = SplitMix64(seed: 0x57ea)
        let messages = [[UInt8](), [7], rng.bytes(1000), rng.bytes(SecureChannel.chunkSize + 5)]
        for _ in 0..<300 {
            var (a, b) = try SecureChannelTests.channels(bound: 1 << 20)
            var stream = [UInt8]()
            for m in messages { stream += try a.seal(m) }
            rng.mutate(&stream)
            var got = [[UInt8]]()
            do {
                var at = 0
                while at < stream.count {
                    let n = min(stream.count - at, 1 + Int(rng.next() % 5000))
                    got += try b.receive(stream[at..<at + n])
                    at += n
                }
            } catch {
                // A typed NoiseError ends the session; what arrived before it must be intact.
            }
            #expect(Array(messages.prefix(got.count)) == got)
        }
    }
}
