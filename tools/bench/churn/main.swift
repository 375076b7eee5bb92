// Store churn benchmark (not a test): ingest files, remove half of them through the store API,
// ingest more, and report each phase's throughput, the data file's size and LMDB's free pages.
//   store-churn STORE_DIR PHASE1_FILES... -- PHASE3_FILES...
import DatanetObjects
import DatanetStore
import Foundation

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

let args = Array(CommandLine.arguments.dropFirst())
guard args.count >= 3, let split = args.firstIndex(of: "--") else {
    FileHandle.standardError.write(Data("usage: store-churn STORE_DIR FILES... -- FILES...\n".utf8))
    exit(2)
}
let dir = args[0]
let first = Array(args[1..<split]), last = Array(args[(split + 1)...])
do {
    let store = try ObjectStore(directory: dir, create: true)
    func ingest(_ files: [String], label: String) throws -> [AddResult] {
        let bytes = try Ingest.plan(files).reduce(0) { $0 + $1.node.totalBytes }
        let t0 = ContinuousClock.now
        var results = [AddResult]()
        for f in files { results += try Ingest(store: store).add(paths: [f]) }
        let s = seconds(ContinuousClock.now - t0)
        let (pageSize, lastPage, _) = try store.env.usage()
        print(String(format: "%@: %.0f MB in %.2f s = %.0f MB/s; data file %.0f MB, %d free pages (%.0f MB)",
                     label, Double(bytes) / 1e6, s, Double(bytes) / 1e6 / s,
                     Double(fileSize(dir + "/data.mdb")) / 1e6, try store.env.freePages(),
                     Double(try store.env.freePages() * pageSize) / 1e6))
        _ = lastPage
        return results
    }
    let added = try ingest(first, label: "phase 1 ingest")
    let t0 = ContinuousClock.now
    for r in added.enumerated() where r.offset % 2 == 0 { try store.remove(r.element.id) }
    print(String(format: "phase 2 remove half: %.2f s; data file %.0f MB, %d free pages",
                 seconds(ContinuousClock.now - t0), Double(fileSize(dir + "/data.mdb")) / 1e6, try store.env.freePages()))
    _ = try ingest(last, label: "phase 3 ingest")
    let report = try store.fsck()
    print("fsck: \(report.problems.isEmpty ? "sound" : "\(report.problems.count) problems")")
} catch {
    FileHandle.standardError.write(Data("store-churn: \(error)\n".utf8))
    exit(1)
}
