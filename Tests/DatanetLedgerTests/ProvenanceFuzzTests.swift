import DatanetCrypto
@testable import DatanetLedger
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

/// Seeded mutations of the provenance decoders' inputs (SQLite's habit): receipts and bundles
/// never crash the verifier or importer, and a mutated bundle never changes the store.
@Suite struct ProvenanceFuzzTests {
    @Test func mutatedReceiptsNeverCrashOrVerifyChanged() throws {
        let (w, a, _) = try ReceiptTests.world()
        let good = try w.ledger.receipt(for: a.id)
        let bytes = Array(try good.json)
        var rng = SplitMix64(seed: 7)
        var refused = 0
        for _ in 0..<2000 {
            var b = bytes
            rng.mutate(&b)
            guard let r = try? Receipt(json: Data(b)) else { refused += 1; continue }
            let v = r.verify(anchor: w.datanet)
            // A mutation that still verifies may only have touched layout (whitespace, key
            // order), never a value: the parsed receipt is then the original.
            if v.holds { #expect(r == good) } else { refused += 1 }
        }
        #expect(refused > 1800)
    }

    @Test func mutatedBundlesNeverCrashOrChangeTheStore() throws {
        let (w, _) = try BundleTests.world()
        let good = try BundleTests.export(w.ledger, w.datanet)
        let frames = BundleTests.frames(good)
        var rng = SplitMix64(seed: 11)
        let peer = try BundleTests.Peer()
        let before = peer.fingerprint
        for round in 0..<300 {
            var bad: [UInt8]
            if round % 2 == 0 {
                // Damage inside one frame, end frame recomputed: the parsers and the replay see it.
                var f = frames
                let i = Int(rng.next() % UInt64(f.count - 1)) + 1
                rng.mutate(&f[i])
                bad = BundleTests.reassemble(f)
            } else {
                bad = good
                rng.mutate(&bad)
            }
            if bad == good { continue }
            if (try? BundleTests.importBytes(peer.ledger, bad)) != nil {
                // Some frame damage leaves an equivalent bundle (a frame's bytes that nothing
                // reads, such as a repeated object): then the import must equal the honest one.
                #expect(try peer.ledger.audit(w.datanet).holds)
                #expect(try peer.ledger.state(of: w.datanet).size == 3)
                return
            }
            #expect(peer.fingerprint == before, "round \(round) changed the store")
        }
    }
}
