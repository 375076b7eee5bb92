import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// Content named on the command line: an object id (or unique prefix), a contribution id (its
/// content), or a path this store added or contributed (or a path inside such a folder).
struct ContentTarget {
    var kind: ObjectKind
    var id: ObjectID
    /// The added or contributed root the path was found under, and the path inside it.
    var root: AddedObject?
    var inner: String?
    /// The contribution named by id, if it was one.
    var contribution: RecordID?
}

/// The ledger of a store, read-only, when it has one (content commands work on stores without).
func ledgerIfAny(_ store: ObjectStore) -> Ledger? { try? Ledger(store: store, create: false) }

/// Resolves `text` to content: hex digits name an object or a contribution (one that is both is
/// refused as ambiguous); anything else is a path this store added or contributed.
func resolveContent(_ ledger: Ledger?, _ store: ObjectStore, _ text: String) throws -> ContentTarget {
    if isHexPrefix(text) {
        let object: (ObjectKind, ObjectID)? = try? store.resolve(text)
        let records = try ledger.map { l in try l.reader.recordIDs(prefix: text).filter { try contribution(l, $0) != nil } } ?? []
        if records.count > 1 { throw StoreError.ambiguous(prefix: text, matches: records.count) }
        if object != nil, !records.isEmpty { throw StoreError.ambiguous(prefix: text, matches: 2) }
        if let object { return ContentTarget(kind: object.0, id: object.1) }
        if let r = records.first, let ledger, let c = try contribution(ledger, r) {
            return ContentTarget(kind: c.contentKind.object, id: c.content, contribution: r)
        }
        // A prefix that names nothing may still be a file name made of hex digits.
        if let found = try resolvePath(store, text) { return found }
        _ = try store.resolve(text) // throws the object store's "not found" or "ambiguous"
    }
    if let found = try resolvePath(store, text) { return found }
    throw CLIError.failure("'\(text)' is neither an id here nor a path this store added or contributed (see `datanet ls`)")
}

/// The contribution `text` names: a record id or prefix, or content (by id or path) that exactly
/// one contribution here holds. `note` says when a path inside a folder stands for the whole folder.
func resolveContribution(_ ledger: Ledger, _ text: String) throws -> (id: RecordID, note: String?) {
    if isHexPrefix(text), let ids = try? ledger.reader.recordIDs(prefix: text), ids.count == 1 { return (ids[0], nil) }
    let target: ContentTarget
    do { target = try resolveContent(ledger, ledger.store, text) } catch StoreError.notFound {
        throw CLIError.failure("no contribution, object or added path '\(text)' here (see `datanet status`)")
    }
    if let r = target.contribution { return (r, nil) }
    var container = target.id
    var note: String?
    if let root = target.root, target.inner != nil {
        container = root.id
        note = "\(terminalSafe(text)) is inside the folder contribution \(terminalSafe(root.path)): this applies to the whole contribution"
    }
    let found = try ledger.reader.contributions(withContent: container)
    guard !found.isEmpty else { throw CLIError.failure("'\(text)' is content no contribution here holds") }
    guard found.count == 1 else {
        throw CLIError.failure("'\(text)' is the content of \(found.count) contributions (\(found.map { String($0.hex.prefix(12)) }.joined(separator: ", "))); give a contribution id")
    }
    return (found[0], note)
}

func isHexPrefix(_ text: String) -> Bool {
    !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { Hex.nibble($0) != nil }
}

/// The contribution record `id` holds, if it is one held here.
func contribution(_ ledger: Ledger, _ id: RecordID) throws -> Contribution? {
    guard let e = try ledger.reader.record(id), case .contribution(let c)? = try? Record(e) else { return nil }
    return c
}

/// A path this store added or contributed (as typed then, or as an absolute path), or a path
/// inside such a folder; nil when none matches.
func resolvePath(_ store: ObjectStore, _ text: String) throws -> ContentTarget? {
    let wanted = Set([normalizedPath(text), absolutePath(text)])
    // The deepest root wins (the exact path over a folder holding it); among equals, the newest.
    var best: (AddedObject, [String])?
    for o in try store.addedObjects() {
        let root = normalizedPath(o.path)
        for w in wanted {
            let rest: [String]
            if w == root { rest = [] }
            else if w.hasPrefix(root == "/" ? "/" : root + "/") { rest = w.dropFirst(root.count).split(separator: "/").map(String.init) }
            else { continue }
            if best == nil || rest.count <= best!.1.count { best = (o, rest) }
        }
    }
    guard let (root, rest) = best else { return nil }
    var (kind, id) = (root.kind, root.id)
    for name in rest {
        guard kind == .tree, let tree = try store.tree(id), let e = tree.entries.first(where: { $0.name == Array(name.utf8) }) else {
            throw CLIError.failure("\(terminalSafe(text)): \(terminalSafe(root.path)) holds no '\(terminalSafe(name))'")
        }
        (kind, id) = (e.kind, e.id)
    }
    return ContentTarget(kind: kind, id: id, root: root, inner: rest.isEmpty ? nil : rest.joined(separator: "/"))
}

/// `text` with "." components, repeated and trailing slashes removed, and ".." applied.
func normalizedPath(_ text: String) -> String {
    var parts = [String]()
    for c in text.split(separator: "/", omittingEmptySubsequences: true) {
        if c == "." { continue }
        if c == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
        parts.append(String(c))
    }
    let joined = parts.joined(separator: "/")
    return text.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
}

/// `text` as an absolute, normalized path (against the current folder).
func absolutePath(_ text: String) -> String {
    text.hasPrefix("/") ? normalizedPath(text) : normalizedPath(FileManager.default.currentDirectoryPath + "/" + text)
}

/// `D` or `D@SIZE`: a Datanet this store follows, and the checkpoint size asked for (nil: the newest).
func datanetAt(_ ledger: Ledger, _ spec: String) throws -> (DatanetState, UInt64?) {
    guard let at = spec.lastIndex(of: "@") else { return (try ledger.reader.resolveDatanet(spec), nil) }
    guard let size = UInt64(spec[spec.index(after: at)...]) else { throw CLIError.usage("\(spec): the size after @ is not a number") }
    return (try ledger.reader.resolveDatanet(String(spec[..<at])), size)
}
