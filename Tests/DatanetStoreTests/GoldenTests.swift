import DatanetCrypto
@testable import DatanetObjects
@testable import DatanetStore
import Foundation
import Testing

/// The golden vectors of schema/vectors/objects.json, written by an independent implementation
/// (tools/gen/golden.py, Python standard library only): chunk cuts, roots, blob and tree ids,
/// and chunk proofs that must verify, fail with a named reason, or be accepted.
@Suite struct GoldenTests {
    nonisolated(unsafe) static let vectors: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("schema/vectors/objects.json")
        let data = try! Data(contentsOf: url)
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    /// Regenerates an input the way the file's "generators" section describes.
    static func input(_ spec: [String: Any]) -> [UInt8] {
        let size = spec["size"] as! Int
        if spec["generator"] as! String == "zeros" { return [UInt8](repeating: 0, count: size) }
        let seed = Array((spec["seed"] as! String).utf8)
        var out = [UInt8]()
        out.reserveCapacity(size + 32)
        var counter: UInt64 = 0
        while out.count < size {
            var block = seed
            for i in stride(from: 56, through: 0, by: -8) { block.append(UInt8(truncatingIfNeeded: counter >> UInt64(i))) }
            out += SHA256.hash(block).bytes
            counter += 1
        }
        return Array(out.prefix(size))
    }

    @Test func gearTable() {
        for pair in Self.vectors["gear_check"] as! [[Any]] {
            #expect(String(FastCDC.gear(UInt8(pair[0] as! Int)), radix: 16).leftPadded(16) == pair[1] as! String)
        }
    }

    @Test func blobs() throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        for (n, b) in (Self.vectors["blobs"] as! [[String: Any]]).enumerated() {
            let data = Self.input(b["input"] as! [String: Any])
            #expect(SHA256.hash(data).hex == b["input_sha256"] as! String)
            writeFile(dir.file("in\(n)"), data)
            let id = try Ingest(store: store).add(paths: [dir.file("in\(n)")])[0].id
            let m = try #require(try store.blob(id))
            let want = (b["chunks"] as! [[String: Any]]).map { "\($0["offset"]!) \($0["length"]!) \($0["id"]!)" }
            #expect(m.chunks.map { "\($0.offset) \($0.length) \($0.id.hex)" } == want, "blob \(n)")
            #expect(m.root.hex == b["root"] as! String)
            #expect(id.hex == b["blob"] as! String)
            #expect(SHA256.hash(m.encoded).hex == b["manifest_sha256"] as! String)
        }
    }

    @Test func trees() throws {
        for t in Self.vectors["trees"] as! [[String: Any]] {
            let entries = (t["entries"] as! [[String: Any]]).map {
                TreeEntry(name: Hex.decode($0["name_hex"] as! String)!, kind: ObjectKind(rawValue: UInt8($0["kind"] as! Int))!,
                          id: ObjectID(hex: $0["id"] as! String)!, size: UInt64($0["size"] as! Int))
            }
            let tree = try Tree(entries: entries)
            #expect(Hex.encode(tree.encoded) == t["cbor"] as! String, "\(t["desc"]!)")
            #expect(Tree.id(encoded: tree.encoded).hex == t["id"] as! String)
            #expect(try Tree(encoded: Hex.decode(t["cbor"] as! String)!) == tree)
        }
    }

    static func proof(_ j: [String: Any]) throws -> ChunkProof {
        var j = j
        j["desc"] = nil; j["expect"] = nil
        return try JSONDecoder().decode(ChunkProof.self, from: JSONSerialization.data(withJSONObject: j))
    }

    @Test func chunkProofs() throws {
        let p = Self.vectors["chunk_proofs"] as! [String: Any]
        for j in (p["valid"] as! [[String: Any]]) + (p["accepted"] as! [[String: Any]]) { try Self.proof(j).verify() }
        var failures = [String]()
        let invalid = p["invalid"] as! [[String: Any]]
        for j in invalid {
            let proof = try Self.proof(j)
            do throws(ChunkProof.Failure) {
                try proof.verify()
                failures.append("\(j["desc"]!): accepted")
            } catch {
                if reason(error) != j["expect"] as! String { failures.append("\(j["desc"]!): \(reason(error))") }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(invalid.count) failed: \(failures)")
    }

    /// The case name of a failure, looking through `.proof` to the Merkle error.
    func reason(_ e: ChunkProof.Failure) -> String {
        switch e {
        case .wrongType: "wrongType"
        case .badHex: "badHex"
        case .chunkOutsideFile: "chunkOutsideFile"
        case .blobIdMismatch: "blobIdMismatch"
        case .lastChunkMismatch: "lastChunkMismatch"
        case .proof(.indexOutOfRange): "indexOutOfRange"
        case .proof(.wrongProofSize): "wrongProofSize"
        case .proof(.rootMismatch): "rootMismatch"
        case .proof(.invalidRange): "invalidRange"
        case .proof(.unexpectedProof): "unexpectedProof"
        }
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
