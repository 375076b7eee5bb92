import DatanetCrypto
@_exported import DatanetTestSupport
@testable import DatanetObjects
@testable import DatanetStore
import Foundation
import Glibc
import Testing

/// A fresh folder under /tmp, removed when the value is released.
final class TempDir {
    let path: String
    init(_ label: String = #function) {
        let safe = label.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "datanet-test-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
}

/// The bytes of a blob, read back through the store.
func readBlob(_ store: ObjectStore, _ id: ObjectID) throws -> [UInt8] {
    let tmp = TempDir()
    let path = tmp.file("out")
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    try store.writeBlob(id, to: fd)
    close(fd)
    return Array(FileManager.default.contents(atPath: path)!)
}

/// Opens a new store in a temp folder.
func makeStore(_ dir: TempDir, mapSize: Int? = nil) throws -> ObjectStore {
    try ObjectStore(directory: dir.file("store"), create: true, mapSize: mapSize)
}

/// SHA-256 of a file's contents (to show a store file did not change).
func fileDigest(_ path: String) -> Digest? {
    FileManager.default.contents(atPath: path).map { SHA256.hash($0) }
}

/// The built `datanet` executable (next to the test bundle).
let datanetBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = (exe as NSString).deletingLastPathComponent
    if dir.hasSuffix(".xctest") || dir.contains(".xctest/") { dir = (dir as NSString).deletingLastPathComponent }
    return dir + "/datanet"
}()

struct RunResult {
    var status: Int32; var stdout: String; var stderr: String
    /// Killed by a signal (a trap, an abort): never acceptable on any input.
    var signaled = false
}

/// Runs `datanet` with arguments and environment additions; waits for it.
@discardableResult
func runDatanet(_ args: [String], store: String? = nil, env: [String: String] = [:],
                shellPrefix: String? = nil) throws -> RunResult {
    let p = Process()
    var environment = ProcessInfo.processInfo.environment
    if let store { environment["DATANET_DIR"] = store }
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    if let shellPrefix {
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", shellPrefix + " exec \"$0\" \"$@\"", datanetBinary] + args
    } else {
        p.executableURL = URL(fileURLWithPath: datanetBinary)
        p.arguments = args
    }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                     stderr: String(decoding: e, as: UTF8.self), signaled: p.terminationReason == .uncaughtSignal)
}
