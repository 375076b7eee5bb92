import Glibc

/// A file or folder to add, checked before anything is written: every path exists, is readable
/// where the system says so, is a regular file or folder, and no symbolic link leads back into a
/// folder being walked. Planning first is what lets a bad path leave the store untouched.
public indirect enum SourceNode: Sendable {
    /// A regular file (symbolic links followed) and its size at planning time.
    case file(path: [UInt8], size: UInt64)
    /// A folder and its children, sorted by name bytes.
    case folder(path: [UInt8], children: [(name: [UInt8], node: SourceNode)])

    /// Total bytes of file content.
    public var totalBytes: UInt64 {
        switch self {
        case .file(_, let size): return size
        case .folder(_, let children): return children.reduce(0) { $0 + $1.node.totalBytes }
        }
    }

    /// Walks `path`, following symbolic links.
    /// - Throws: `StoreError.io` (missing, unreadable), `.unsupportedFile`, `.symlinkLoop`.
    public static func plan(_ path: String) throws -> SourceNode {
        try plan(bytes: Array(path.utf8))
    }

    /// Walks a path given as bytes: a path need not be valid UTF-8 (argv and folder entries
    /// are bytes on Linux).
    public static func plan(bytes path: [UInt8]) throws -> SourceNode {
        var ancestors = Set<FileIdentity>()
        return try plan(path, ancestors: &ancestors)
    }

    private struct FileIdentity: Hashable { var dev: UInt64; var ino: UInt64 }

    private static func plan(_ path: [UInt8], ancestors: inout Set<FileIdentity>) throws -> SourceNode {
        var st = stat()
        guard withCPath(path, { stat($0, &st) }) == 0 else {
            if errno == ELOOP { throw StoreError.symlinkLoop(path: display(path)) }
            throw StoreError.io(path: display(path), operation: "read", errno: errno)
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            guard withCPath(path, { access($0, R_OK) }) == 0 else {
                throw StoreError.io(path: display(path), operation: "read", errno: errno)
            }
            return .file(path: path, size: UInt64(st.st_size))
        case S_IFDIR:
            let me = FileIdentity(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
            guard ancestors.insert(me).inserted else { throw StoreError.symlinkLoop(path: display(path)) }
            defer { ancestors.remove(me) }
            guard let dir = withCPath(path, { opendir($0) }) else {
                throw StoreError.io(path: display(path), operation: "read folder", errno: errno)
            }
            defer { closedir(dir) }
            var names = [[UInt8]]()
            while true {
                errno = 0
                guard let ent = readdir(dir) else {
                    if errno != 0 { throw StoreError.io(path: display(path), operation: "read folder", errno: errno) }
                    break
                }
                let name = withUnsafeBytes(of: &ent.pointee.d_name) { raw in
                    Array(raw.prefix(while: { $0 != 0 }))
                }
                if name == [0x2e] || name == [0x2e, 0x2e] { continue }
                names.append(name)
            }
            names.sort { $0.lexicographicallyPrecedes($1) }
            var children = [(name: [UInt8], node: SourceNode)]()
            for name in names {
                let child = path.last == 0x2f ? path + name : path + [0x2f] + name
                children.append((name, try plan(child, ancestors: &ancestors)))
            }
            return .folder(path: path, children: children)
        default:
            throw StoreError.unsupportedFile(path: display(path))
        }
    }
}

/// Calls `body` with a NUL-terminated copy of a byte path.
func withCPath<R>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
    var c = path
    c.append(0)
    return try c.withUnsafeBufferPointer { b in
        try b.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
    }
}

/// A byte path as text for people: a component that is valid UTF-8 is shown as it is, any
/// other in its exported form (`ExportedName`: invalid bytes as %XX), so no byte is lost or
/// replaced by U+FFFD.
public func display(_ path: [UInt8]) -> String {
    path.split(separator: 0x2f, omittingEmptySubsequences: false).map { c in
        String(validating: c, as: UTF8.self) ?? ExportedName.encode(Array(c))
    }.joined(separator: "/")
}
