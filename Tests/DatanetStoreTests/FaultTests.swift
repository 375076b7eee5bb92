import DatanetCrypto
@testable import DatanetObjects
@testable import DatanetStore
import Foundation
import Glibc
import Testing

/// SQLite-style fault and crash loops: after every injected failure, killed process or full
/// disk, the store is fsck-clean and holds either nothing of the new file or all of it.
@Suite(.serialized) struct FaultTests {
    /// Fails the Nth write or commit, N = 1, 2, … until an add completes with no fault fired,
    /// once transiently (the rollback runs) and once persistently (the rollback fails too).
    @Test(arguments: [false, true], [false, true])
    func failTheNthWriteOrCommit(persistent: Bool, pipelined: Bool) throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        var rng = SplitMix64(seed: 42)
        let keep = rng.bytes(300_000), data = rng.bytes(3_000_000)
        writeFile(dir.file("keep"), keep)
        writeFile(dir.file("new"), data)
        let kept = try Ingest(store: store).add(paths: [dir.file("keep")])[0].id
        let chunksBefore = try store.stats().chunks
        var n = 1
        var completed = false
        while !completed {
            #expect(n < 10_000)
            let plan = FaultPlan(failAt: n, persistent: persistent)
            store.env.faults = plan
            // A small dirty limit makes the add span many batches, so faults land between them.
            let ingest = Ingest(store: store, dirtyLimit: 200_000)
            if pipelined { ingest.pipelineThreshold = 0 }
            let result = try? ingest.add(paths: [dir.file("new")])
            store.env.faults = nil
            completed = !plan.fired
            #expect((result != nil) == completed, "run \(n)")
            let report = try store.fsck()
            #expect(report.problems.isEmpty, "run \(n): \(report.problems)")
            let added = try store.addedObjects().map(\.id)
            #expect(added.contains(kept))
            if let result {
                #expect(try readBlob(store, result[0].id) == data)
            } else {
                #expect(added == [kept], "run \(n): a failed add left an added object")
                if !persistent { #expect(try store.stats().chunks == chunksBefore, "run \(n): rollback incomplete") }
            }
            n += 1
        }
        #expect(n > 5)
        #expect(try readBlob(store, kept) == keep)
    }

    /// A `datanet add` killed with SIGKILL at seeded moments, 20 times: the store is fsck-clean
    /// after each, and running the same add again completes.
    @Test func sigkillDuringAdd() throws {
        let dir = TempDir()
        let storePath = dir.file("store")
        #expect(try runDatanet(["init"], store: storePath).status == 0)
        var rng = SplitMix64(seed: 2026)
        let data = rng.bytes(48 << 20)
        writeFile(dir.file("big"), data)
        for trial in 0..<20 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: datanetBinary)
            p.arguments = ["add", "--quiet", dir.file("big")]
            var env = ProcessInfo.processInfo.environment
            env["DATANET_DIR"] = storePath
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(useconds_t(rng.next() % 400_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let fsck = try runDatanet(["fsck", "--json"], store: storePath)
            #expect(fsck.status == 0, "trial \(trial): \(fsck.stdout) \(fsck.stderr)")
        }
        let again = try runDatanet(["add", "--quiet", dir.file("big")], store: storePath)
        #expect(again.status == 0, "\(again.stderr)")
        let id = String(again.stdout.prefix(64))
        let out = dir.file("out")
        #expect(try runDatanet(["cat", id, "-o", out], store: storePath).status == 0)
        #expect(FileManager.default.contents(atPath: out).map(Array.init) == data)
        #expect(try runDatanet(["fsck"], store: storePath).status == 0)
    }

    /// A real full disk: the file-size limit (SIGXFSZ ignored, so writes fail with EFBIG) stops
    /// the add; it fails with an error naming the cause, and the store is as before.
    @Test func addUnderAFileSizeLimitFailsCleanly() throws {
        let dir = TempDir()
        let storePath = dir.file("store")
        #expect(try runDatanet(["init"], store: storePath).status == 0)
        var rng = SplitMix64(seed: 99)
        writeFile(dir.file("small"), rng.bytes(500_000))
        writeFile(dir.file("big"), rng.bytes(64 << 20))
        #expect(try runDatanet(["add", dir.file("small")], store: storePath).status == 0)
        let lsBefore = try runDatanet(["ls", "--json"], store: storePath).stdout
        let statBefore = try runDatanet(["stat", "--json"], store: storePath).stdout
        let dataSize = fileSize(storePath + "/data.mdb")
        let limitKiB = (dataSize + (8 << 20)) / 1024
        let r = try runDatanet(["add", "--quiet", dir.file("big")], store: storePath,
                               shellPrefix: "trap '' XFSZ; ulimit -f \(limitKiB);")
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("datanet: cannot write to the store: file too large"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(try runDatanet(["ls", "--json"], store: storePath).stdout == lsBefore)
        let statAfter = try runDatanet(["stat", "--json"], store: storePath).stdout
        #expect(statAfter.split(separator: "\n").filter { !$0.contains("disk_bytes") } ==
                statBefore.split(separator: "\n").filter { !$0.contains("disk_bytes") })
        #expect(try runDatanet(["fsck"], store: storePath).status == 0)
    }

    /// A real full disk: a 48 MiB tmpfs (where this machine lets root mount one).
    @Test(.enabled(if: canMountTmpfs())) func addOnAFullTmpfsFailsCleanly() throws {
        let dir = TempDir()
        let mnt = dir.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        #expect(mount("tmpfs", mnt, "tmpfs", 0, "size=48m") == 0)
        defer { umount(mnt) }
        let storePath = mnt + "/store"
        #expect(try runDatanet(["init"], store: storePath).status == 0)
        var rng = SplitMix64(seed: 7)
        writeFile(dir.file("small"), rng.bytes(700_000))
        writeFile(dir.file("big"), rng.bytes(64 << 20))
        #expect(try runDatanet(["add", dir.file("small")], store: storePath).status == 0)
        let lsBefore = try runDatanet(["ls", "--json"], store: storePath).stdout
        let r = try runDatanet(["add", "--quiet", dir.file("big")], store: storePath)
        #expect(r.status == 1)
        #expect(r.stderr == "datanet: cannot write to the store: No space left on device\n")
        #expect(try runDatanet(["ls", "--json"], store: storePath).stdout == lsBefore)
        let fsck = try runDatanet(["fsck", "--json"], store: storePath)
        #expect(fsck.status == 0)
        #expect(fsck.stdout.contains("\"unreferenced\" : [\n\n  ]") || fsck.stdout.contains("\"unreferenced\" : [ ]") ||
                fsck.stdout.contains("\"unreferenced\" : []"), "\(fsck.stdout)")
    }

    /// While this process holds a read transaction, another process adds past the current map
    /// size (growing it); both succeed, and this process then adopts the new size.
    @Test func twoProcessesAndMapGrowth() throws {
        let dir = TempDir()
        let small = 4 << 20
        let store = try makeStore(dir, mapSize: small)
        var rng = SplitMix64(seed: 3)
        let first = rng.bytes(100_000), second = rng.bytes(24 << 20)
        writeFile(dir.file("first"), first)
        writeFile(dir.file("second"), second)
        let firstID = try Ingest(store: store).add(paths: [dir.file("first")])[0].id
        let reader = try store.env.beginRead()
        let r = try runDatanet(["add", "--quiet", dir.file("second")], store: store.directory,
                               env: ["DATANET_MAP_SIZE": String(small)])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(fileSize(store.directory + "/data.mdb") > Int64(small))
        // The old snapshot still reads, and does not see the new file.
        #expect(try reader.get(store.blobs, firstID) != nil)
        #expect(try reader.count(store.roots) == 1)
        reader.abort()
        let secondID = try #require(ObjectID(hex: String(r.stdout.prefix(64))))
        #expect(try readBlob(store, secondID) == second)
        #expect(store.env.mapSize > small)
        // And this process can write past the old size too.
        _ = try Ingest(store: store).add(paths: [dir.file("second"), dir.file("first")])
        #expect(try store.fsck().problems.isEmpty)
    }
}


/// True when this process may mount a tmpfs (root with CAP_SYS_ADMIN, as on the CI machines).
func canMountTmpfs() -> Bool {
    let dir = TempDir("probe")
    let mnt = dir.file("m")
    guard (try? FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)) != nil,
          mount("tmpfs", mnt, "tmpfs", 0, "size=1m") == 0 else { return false }
    umount(mnt)
    return true
}
