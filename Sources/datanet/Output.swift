import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

/// Writes all bytes to a file descriptor. A reader that went away (EPIPE, as with `| head`)
/// ends the program quietly: there is no one left to tell. FileHandle.write would trap instead.
func writeFD<B: Sequence>(_ fd: Int32, _ bytes: B) where B.Element == UInt8 {
    let buf = Array(bytes)
    buf.withUnsafeBytes { b in
        var off = 0
        while off < b.count {
            let n = write(fd, b.baseAddress! + off, b.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { exit(0) }
                return
            }
            off += n
        }
    }
}

/// Writes a line to standard output. A last guard for text no caller escaped: control
/// characters other than the newlines a caller writes are shown as `\u{XX}`.
func out(_ s: String) { writeFD(1, (lines(s) + "\n").utf8) }

/// Writes a line to standard error, guarded as `out` is.
func err(_ s: String) { writeFD(2, (lines(s) + "\n").utf8) }

private func lines(_ s: String) -> String {
    s.split(separator: "\n", omittingEmptySubsequences: false).map { terminalSafe(String($0)) }.joined(separator: "\n")
}

/// Prints a JSON value with sorted keys and unescaped slashes: stable output for scripts.
func printJSON(_ value: Any) throws {
    writeFD(1, try JSONText.pretty(value) + [0x0a])
}

/// Bytes in binary units, e.g. "1.5 GiB".
func humanBytes<I: BinaryInteger>(_ n: I) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

/// `humanBytes` remembered per size: listings print the same few sizes many times.
struct SizeTexts {
    private var known = [UInt64: String]()
    mutating func callAsFunction(_ n: UInt64) -> String {
        if let hit = known[n] { return hit }
        let made = humanBytes(n)
        known[n] = made
        return made
    }
}

/// A progress bar on standard error, drawn only when standard output is a terminal and
/// `--quiet` was not given; at most ten redraws a second.
final class ProgressBar {
    private var total: UInt64
    private let label: String
    private let enabled: Bool
    private let start = ContinuousClock.now
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var drawn = false

    init(total: UInt64, label: String, quiet: Bool) {
        self.total = total
        self.label = label
        enabled = !quiet && isatty(1) == 1
    }

    /// Draws `done` of the total, which `total` replaces when given (an estimate that firms up).
    func update(_ done: UInt64, total newTotal: UInt64? = nil) {
        guard enabled else { return }
        if let newTotal { total = newTotal }
        let now = ContinuousClock.now
        guard now - lastDraw >= .milliseconds(100) || done == total else { return }
        lastDraw = now
        let elapsed = Double((now - start).components.seconds) + Double((now - start).components.attoseconds) / 1e18
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let remaining = rate > 0 ? Double(total - min(done, total)) / rate : 0
        let eta = String(format: "%d:%02d", Int(remaining) / 60, Int(remaining) % 60)
        let line = String(format: "\r%@ [%@] %3d%%  %@ / %@  %@/s  ETA %@ ", label, bar, Int(fraction * 100),
                          humanBytes(done), humanBytes(total), humanBytes(UInt64(rate)), eta)
        writeFD(2, line.utf8)
        drawn = true
    }

    /// Clears the bar's line.
    func finish() {
        guard drawn else { return }
        writeFD(2, "\r\u{1B}[K".utf8)
    }
}

/// Reads a small input file (receipts, proofs, notes): at most 64 MiB, so a wrong path to a
/// huge file fails at once instead of filling memory.
func readInput(_ path: String, limit: Int = 64 << 20) throws -> Data {
    var st = stat()
    guard stat(path, &st) == 0 else { throw StoreError.io(path: path, operation: "read", errno: errno) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw CLIError.failure("\(path) is not a regular file") }
    guard Int(st.st_size) <= limit else { throw CLIError.failure("\(path) is \(st.st_size) bytes; at most \(limit) are read") }
    guard let data = FileManager.default.contents(atPath: path) else { throw StoreError.io(path: path, operation: "read", errno: errno) }
    return data
}

/// Writes bytes to standard output, or replaces `path` atomically (temporary file, fsync, rename).
func writeOutput(_ data: Data, to path: String?) throws {
    guard let path else { writeFD(1, data); return }
    let (fd, tmp) = try createTemporaryFile(beside: path)
    let ok = data.withUnsafeBytes { b -> Bool in
        var off = 0
        while off < b.count {
            let n = write(fd, b.baseAddress! + off, b.count - off)
            if n < 0 { if errno == EINTR { continue }; return false }
            off += n
        }
        return fsync(fd) == 0
    }
    let saved = errno
    close(fd)
    guard ok, rename(tmp, path) == 0 else {
        let e = ok ? errno : saved
        unlink(tmp)
        throw StoreError.io(path: path, operation: "write", errno: e)
    }
}

/// Linux's O_TMPFILE (__O_TMPFILE | O_DIRECTORY), which Glibc's Swift overlay does not export:
/// an unnamed file in a folder, gone when closed.
let oTmpFile: Int32 = 0o20_000_000 | O_DIRECTORY

/// Prints a Codable value as JSON with sorted keys: stable output for scripts.
func printEncodable<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    writeFD(1, try e.encode(value) + Data("\n".utf8))
}

/// Text that came from records, sidecars or another store, made safe to print: every control
/// character (TextRules.isControl: C0, DEL, C1, bidirectional overrides) is shown as `\u{XX}`,
/// so no field can move the cursor, recolor the terminal or fake a line of output.
func terminalSafe(_ text: String) -> String {
    // Printable ASCII, most text a listing prints, needs no look at its scalars.
    if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) { return text }
    guard text.unicodeScalars.contains(where: TextRules.isControl) else { return text }
    var out = ""
    for s in text.unicodeScalars {
        if TextRules.isControl(s) { out += "\\u{" + String(s.value, radix: 16, uppercase: true) + "}" } else { out.unicodeScalars.append(s) }
    }
    return out
}

/// Writes a one-line error: every control character escaped, newlines included.
func errLine(_ s: String) { writeFD(2, (terminalSafe(s) + "\n").utf8) }

/// Standard output gathered in blocks of 64 KiB: a listing writes each line as a few appends
/// of bytes, not as a string built per line (`log --all` of 200,000 leaves).
struct LineWriter {
    private(set) var bytes = [UInt8]()
    /// Whether a full block is written out at a line's end (a block worker's writer keeps its
    /// lines until the caller writes them in order).
    private let flushing: Bool

    init(flushing: Bool = true) {
        self.flushing = flushing
        if flushing { bytes.reserveCapacity(1 << 17) }
    }

    mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// The first `count` hex digits of an id or key.
    mutating func hex<Kind>(_ id: ID<Kind>, _ count: Int) { id.withUnsafeBytes { Hex.append($0, digits: count, to: &bytes) } }
    mutating func hex(_ key: PublicKey, _ count: Int) { key.withUnsafeBytes { Hex.append($0, digits: count, to: &bytes) } }

    /// A decimal number right-aligned in `width` columns.
    mutating func number(_ v: UInt64, width: Int = 0) {
        var n = v, count = 1
        while n >= 10 { n /= 10; count += 1 }
        if count < width { bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: width - count)) }
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
        n = v
        for k in (start..<start + count).reversed() { bytes[k] = UInt8(ascii: "0") + UInt8(n % 10); n /= 10 }
    }

    /// Ends a line; writes the block out once it is full.
    mutating func newline() {
        bytes.append(10)
        if flushing && bytes.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        writeFD(1, bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}
