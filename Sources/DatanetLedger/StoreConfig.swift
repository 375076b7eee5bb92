import Foundation
import Glibc

/// Per-store settings (schema/identity.md "Store settings"): `<store>/config.json`, a JSON
/// object of text values, replaced atomically. Known keys: `identity`, the identity that acts
/// when no `--as` is given.
public struct StoreConfig: Sendable {
    /// The settings file.
    public let path: String
    /// The settings this build knows, with what each means.
    public static let keys = ["identity": "the identity that acts when --as is not given",
                              "max-queued-bytes": "the most content of contributions this store queues, all Datanets together (a byte count such as 16GiB, the default)",
                              "max-queued-records": "the most records of any kind this store queues, all Datanets together (a count such as 1000000, the default)"]

    public init(storeDirectory: String) { path = storeDirectory + "/config.json" }

    /// A count setting: decimal digits, 1 to 1,000,000,000.
    public static func count(_ text: String) -> Int? {
        guard text.utf8.count <= 10, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(text), (1...1_000_000_000).contains(n) else { return nil }
        return n
    }

    /// Every setting; an absent file holds none.
    public func all() throws -> [String: String] {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return [:] }
            throw IdentityError.badFile(path, String(cString: strerror(errno)))
        }
        guard st.st_mode & S_IFMT == S_IFREG, st.st_size <= 1 << 20, let data = FileManager.default.contents(atPath: path) else {
            throw IdentityError.badFile(path, "not a regular file of at most 1 MiB")
        }
        guard let values = try? JSONDecoder().decode([String: String].self, from: data) else {
            throw IdentityError.badFile(path, "not a JSON object of text values")
        }
        return values
    }

    /// The value of `key`, if set.
    public func value(_ key: String) throws -> String? { try all()[key] }

    /// Sets `key` to `value`, or removes it when `value` is nil.
    public func set(_ key: String, _ value: String?) throws {
        var values = try all()
        values[key] = value
        try replaceFile(path, with: try sortedJSON(values))
    }
}

/// JSON with sorted keys and a final newline: files people may read and diff.
func sortedJSON<T: Encodable>(_ value: T) throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try e.encode(value) + Data("\n".utf8)
}

/// Replaces a small file atomically: a temporary file beside it, fsync, rename.
func replaceFile(_ path: String, with data: Data) throws {
    let tmp = path + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
    guard fd >= 0 else { throw IdentityError.badFile(tmp, String(cString: strerror(errno))) }
    let ok = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
    close(fd)
    guard ok, rename(tmp, path) == 0 else {
        unlink(tmp)
        throw IdentityError.badFile(path, "could not be written")
    }
}
