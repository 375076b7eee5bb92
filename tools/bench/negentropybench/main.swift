// Negentropy at scale (Negentropy issue, item 5; run by hand, not a test; results in
// BENCHMARKS.md). Two in-memory sets of N items sharing all but D (D/2 only on each side),
// reconciled by a client and a server `Negentropy` in this process, with the ~60 KiB frame
// limit sync uses: rounds, bytes each way, CPU time each side, the time to build each set and
// to add 100 items to a built one, and the process's peak RSS.
// Then the server's set kept in LMDB (`SumTree`, in a store under DIR): the time to load it,
// to add 100 items (one write transaction; its commit timed apart), and the same
// reconciliation with the server reading its set from LMDB.
//   negentropy-bench N D [FRAME_LIMIT] [DIR]      (e.g. 1000000 100, 10000000 1000)
import DatanetCrypto
import DatanetObjects
import DatanetStore
import DatanetSync
import Foundation
import Glibc

/// CPU seconds this thread has used (client and server take turns on it).
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func peakRSSMiB() -> Int {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return u.ru_maxrss / 1024
}

let args = CommandLine.arguments
guard args.count >= 3, let n = Int(args[1]), let d = Int(args[2]), n >= d else {
    FileHandle.standardError.write("usage: negentropy-bench N DIFFERENCE [FRAME_LIMIT]\n".data(using: .utf8)!)
    exit(2)
}
let limit = args.count > 3 ? Int(args[3]) ?? 60_000 : 60_000
let dir = args.count > 4 ? args[4] : "/tmp/negentropy-bench-store"

func wall() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

// Items: ids the SHA-256 of a counter, timestamps spread from them over a month of seconds,
// so the differing items fall anywhere in the order.
func item(_ counter: inout UInt64) -> NegentropyItem {
    counter += 1
    let id = SHA256.hash(withUnsafeBytes(of: counter.bigEndian) { Array($0) })
    let spread = id.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } % 2_592_000
    return NegentropyItem(timestamp: 1_760_000_000 + spread, id: id)
}
var counter: UInt64 = 0
let shared = (0..<(n - d / 2)).map { _ in item(&counter) }
let mine = (0..<(d / 2)).map { _ in item(&counter) }, theirs = (0..<(d - d / 2)).map { _ in item(&counter) }

var t = cpuSeconds()
let clientItems = NegentropyItems(shared + mine)
let buildClient = cpuSeconds() - t
t = cpuSeconds()
var serverItems = NegentropyItems(shared + theirs)
let buildServer = cpuSeconds() - t

var client = try Negentropy(clientItems, frameSizeLimit: limit)
var server = try Negentropy(serverItems, frameSizeLimit: limit)
var clientCPU = 0.0, serverCPU = 0.0
var up = 0, down = 0, rounds = 0
var have = [Digest](), need = [Digest]()
t = cpuSeconds()
var message: [UInt8]? = try client.initiate()
clientCPU += cpuSeconds() - t
while let m = message {
    up += m.count
    var ignored = ([Digest](), [Digest]())
    t = cpuSeconds()
    let answer = try server.reconcile(m, have: &ignored.0, need: &ignored.1)!
    serverCPU += cpuSeconds() - t
    down += answer.count
    t = cpuSeconds()
    message = try client.reconcile(answer, have: &have, need: &need)
    clientCPU += cpuSeconds() - t
    rounds += 1
}
let right = Set(have) == Set(mine.map(\.id)) && Set(need) == Set(theirs.map(\.id))

// One insertion first: the set is still shared with the server's `Negentropy` (copy on write).
serverItems.insert(item(&counter))
t = cpuSeconds()
for _ in 0..<100 { serverItems.insert(item(&counter)) }
let add100 = cpuSeconds() - t

print("negentropy-bench: \(n) items a side, \(d) differing (\(mine.count) only on the client, \(theirs.count) only on the server), frame limit \(limit) B")
print(String(format: "build: client %.2f s, server %.2f s (CPU)", buildClient, buildServer))
print(String(format: "reconcile: %d rounds, client->server %d B, server->client %d B, CPU client %.3f s, server %.3f s; result %@",
             rounds, up, down, clientCPU, serverCPU, right ? "exactly the difference" : "WRONG"))
print(String(format: "add 100 items to the server's built set in memory: %.3f ms", add100 * 1000))
print("peak RSS: \(peakRSSMiB()) MiB (both sets in one process)")
if !right { exit(1) }

// The server's set in LMDB.
try? FileManager.default.removeItem(atPath: dir)
let store = try ObjectStore(directory: dir, create: true)
let table = try store.env.openTables([SumTree.tableName], create: true)[0]
let tree = SumTree(table: table, id: SHA256.hash(Array("bench".utf8)))
var w = wall()
try store.env.write { txn in try tree.load(txn, sorted: (shared + theirs).sorted()) }
let loadTime = wall() - w
// NEGENTROPY_BENCH_ADDS: more additions, to see the steady cost past the first pages' copies.
let adds = Int(ProcessInfo.processInfo.environment["NEGENTROPY_BENCH_ADDS"] ?? "") ?? 100
let added = (0..<adds).map { _ in item(&counter) }
let txn = try store.env.beginWrite()
w = wall()
for a in added { _ = try tree.insert(txn, a) }
let insertTime = wall() - w
w = wall()
try txn.commit()
let commitTime = wall() - w
client = try Negentropy(clientItems, frameSizeLimit: limit)
(up, down, rounds, serverCPU, have, need) = (0, 0, 0, 0, [], [])
message = try client.initiate()
while let m = message {
    up += m.count
    t = cpuSeconds()
    let answer = try store.env.read { txn in
        var stored = try Negentropy(StoredNegentropyItems(tree, in: txn), frameSizeLimit: limit)
        var ignored = ([Digest](), [Digest]())
        return try stored.reconcile(m, have: &ignored.0, need: &ignored.1)!
    }
    serverCPU += cpuSeconds() - t
    down += answer.count
    message = try client.reconcile(answer, have: &have, need: &need)
    rounds += 1
}
let storedRight = Set(have) == Set(mine.map(\.id)) && Set(need) == Set(theirs.map(\.id) + added.map(\.id))
print(String(format: "LMDB set: loaded %d items in %.2f s; %d items added in %.3f ms (%.1f µs each) + commit %.1f ms", n, loadTime, adds, insertTime * 1000,
             insertTime * 1e6 / Double(adds), commitTime * 1000))
print(String(format: "reconcile against it: %d rounds, client->server %d B, server->client %d B, CPU server %.3f s; result %@",
             rounds, up, down, serverCPU, storedRight ? "exactly the difference" : "WRONG"))
try? FileManager.default.removeItem(atPath: dir)
if !storedRight { exit(1) }
