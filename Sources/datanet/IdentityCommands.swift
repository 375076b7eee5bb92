import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

func runIdentity(_ p: Parsed) throws -> Int32 {
    _ = try openStore() // identities live beside a real store; this also checks its format
    let ids = IdentityStore(storeDirectory: storeDir)
    let sub = p.positionals[0]
    let arg = p.positionals.count > 1 ? p.positionals[1] : nil
    func needsName() throws -> String {
        guard let arg else { throw CLIError.usage("`datanet id \(sub)` needs a NAME") }
        return arg
    }
    switch sub {
    case "new":
        let identity = try Identity(name: try needsName())
        try ids.save(identity)
        if p.has("--json") { try printJSON(try describe(identity)) }
        else { out("created identity \(identity.name): \(identity.publicKey)") }
    case "ls":
        guard arg == nil else { throw CLIError.usage("`datanet id ls` takes no argument") }
        // A damaged or unsafe key file is named on standard error (exit 1); the others are listed.
        var all = [Identity](), problems = [String]()
        for name in ids.names() {
            do { all.append(try ids.load(name)) } catch { problems.append("\(error)") }
        }
        let contacts = try ContactBook(storeDirectory: storeDir).all()
        let chosen = try StoreConfig(storeDirectory: storeDir).value("identity")
        if p.has("--json") { try printJSON(try all.map(describe) + contacts.map(describe)) }
        else if all.isEmpty && problems.isEmpty && contacts.isEmpty { out("no identities; create one with `datanet id new NAME`") }
        else {
            for i in all { out("\(i.name)  \(i.publicKey)" + (i.name == chosen ? "  (default)" : "")) }
            for c in contacts { out("\(c.name)  \(c.ed25519)  (contact" + (c.agreementKey == nil ? ", key only)" : ")")) }
        }
        for problem in problems { errLine("datanet: \(problem)") }
        if !problems.isEmpty { return 1 }
    case "show":
        if let arg, let c = try contact(arg) {
            if p.has("--json") { try printJSON(describe(c)) }
            else {
                out("name      \(c.name) (contact)\ned25519   \(c.ed25519)\nx25519    \(c.x25519 ?? "unknown (imported by key alone)")")
                out("added     \(Date(timeIntervalSince1970: Double(c.addedMs) / 1000).formatted(.iso8601))")
            }
            return 0
        }
        let identity = try ids.resolve(arg ?? signerName)
        if p.has("--json") { try printJSON(try describe(identity)) }
        else {
            out("name      \(identity.name)\ned25519   \(identity.publicKey)\nx25519    \(Hex.encode(identity.agreementKey.publicKey))")
            out("created   \(Date(timeIntervalSince1970: Double(identity.createdAt) / 1000).formatted(.iso8601))")
            out("key file  \(ids.directory)/\(identity.name).key")
        }
    case "export":
        let exported: PublicIdentity
        if let arg, let c = try contact(arg) {
            guard let pub = c.publicIdentity else { throw CLIError.failure("the contact \(arg) was imported by key alone: there is no public identity file to export") }
            exported = pub
        } else {
            exported = try ids.resolve(arg ?? signerName).publicIdentity()
        }
        try printEncodable(exported)
    case "import":
        let source = try needsName()
        let name = p.options["--name"]
        let contact: Contact
        if source.utf8.count == 64, Hex.decode(source) != nil {
            guard let name else { throw CLIError.usage("a bare key needs --name NAME") }
            contact = try Contact(key: try resolveKey(source), name: name, addedMs: nowMillis())
        } else {
            let identity: PublicIdentity
            do { identity = try JSONDecoder().decode(PublicIdentity.self, from: try readInput(source == "-" ? "/dev/stdin" : source)) } catch let e as CLIError {
                throw e
            } catch let e as StoreError {
                throw e
            } catch {
                throw CLIError.failure("\(source) is not a public identity file (`datanet id export NAME` writes one)")
            }
            contact = try Contact(identity, name: name ?? identity.name, addedMs: nowMillis())
        }
        if let mine = localIdentity(for: contact.publicKey) {
            throw CLIError.failure("\(contact.ed25519) is this store's own identity \(mine.name)")
        }
        try ContactBook(storeDirectory: storeDir).add(contact, identities: ids)
        if p.has("--json") { try printJSON(describe(contact)) }
        else { out("added contact \(contact.name): \(contact.ed25519)" + (contact.agreementKey == nil ? " (key only: bundles cannot be sealed to it)" : "")) }
    case "rm":
        let name = try needsName()
        if ids.names().contains(name) {
            throw CLIError.failure("\(name) is an identity of this store, not a contact; `datanet id rm` removes contacts only (its key file is \(ids.directory)/\(name).key)")
        }
        try ContactBook(storeDirectory: storeDir).remove(name)
        out("removed contact \(name)")
    case "backup":
        let identity = try ids.load(try needsName())
        guard let dest = p.options["-o"] else { throw CLIError.usage("`datanet id backup NAME` needs -o FILE") }
        let generated = p.has("--generate-passphrase") ? IdentityBackup.generatedPassphrase() : nil
        if generated != nil, p.options["--passphrase-file"] != nil {
            throw CLIError.usage("--generate-passphrase and --passphrase-file are alternatives; give one")
        }
        let pass = try generated.map { Array($0.utf8) } ?? passphrase(p, confirm: true)
        let sealed = try IdentityBackup.seal(identity, passphrase: pass)
        let fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.io(path: dest, operation: "create", errno: errno) }
        defer { close(fd) }
        try writeAll(fd, sealed, path: dest)
        guard fsync(fd) == 0 else { throw StoreError.io(path: dest, operation: "write", errno: errno) }
        if p.has("--json") {
            try printJSON(["name": identity.name, "backup": dest, "passphrase": generated as Any? ?? NSNull()] as [String: Any])
        } else {
            out("wrote an encrypted backup of \(identity.name) to \(dest)")
            if let generated { out("passphrase: \(generated)\n(write it down: it is stored nowhere, and the backup cannot be opened without it)") }
        }
    case "restore":
        let source = try needsName()
        guard let bytes = FileManager.default.contents(atPath: source) else {
            throw StoreError.io(path: source, operation: "read", errno: errno == 0 ? ENOENT : errno)
        }
        let identity = try IdentityBackup.open(Array(bytes), passphrase: try passphrase(p, confirm: false))
        try ids.save(identity)
        out("restored identity \(identity.name): \(identity.publicKey)")
    default:
        throw CLIError.usage("unknown `datanet id` subcommand '\(sub)' (new, ls, show, export, import, rm, backup, restore)")
    }
    return 0
}

/// Public facts about an identity, for --json.
func describe(_ i: Identity) throws -> [String: Any] {
    ["name": i.name, "kind": "identity", "ed25519": i.publicKey.description, "x25519": Hex.encode(i.agreementKey.publicKey), "created_ms": i.createdAt]
}

/// Public facts about a contact, for --json.
func describe(_ c: Contact) -> [String: Any] {
    ["name": c.name, "kind": "contact", "ed25519": c.ed25519, "x25519": c.x25519 as Any? ?? NSNull(), "added_ms": c.addedMs]
}

/// The contact named `name`, if it is one (names of local identities are never contacts).
func contact(_ name: String) throws -> Contact? {
    guard Identity.isValidName(name) else { return nil }
    return try ContactBook(storeDirectory: storeDir).contact(named: name)
}

func runConfig(_ p: Parsed) throws -> Int32 {
    _ = try openStore()
    let config = StoreConfig(storeDirectory: storeDir)
    guard let key = p.positionals.first else {
        let all = try config.all()
        if p.has("--json") { try printJSON(all) } else { for (k, v) in all.sorted(by: { $0.key < $1.key }) { out("\(k) = \(terminalSafe(v))") } }
        return 0
    }
    guard StoreConfig.keys[key] != nil else {
        throw CLIError.usage("unknown setting '\(key)' (" + StoreConfig.keys.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ") + ")")
    }
    if p.has("--unset") {
        guard p.positionals.count == 1 else { throw CLIError.usage("--unset takes no value") }
        try config.set(key, nil)
        out("\(key) unset")
    } else if p.positionals.count == 2 {
        let value = p.positionals[1]
        switch key {
        case "identity": _ = try IdentityStore(storeDirectory: storeDir).load(value) // it must name one here
        case "max-queued-records":
            guard StoreConfig.count(value) != nil else { throw CLIError.usage("\(key) takes a count from 1 to 1000000000, not '\(terminalSafe(value))'") }
        default:
            guard StoreConfig.byteCount(value) != nil else { throw CLIError.usage("\(key) takes a byte count such as 500000000, 512MiB or 16GiB, not '\(terminalSafe(value))'") }
        }
        try config.set(key, value)
        out("\(key) = \(value)")
    } else {
        guard let v = try config.value(key) else { out("\(key) is not set"); return 1 }
        out(v)
    }
    return 0
}

/// The passphrase from --passphrase-file (its first line), or asked on the terminal with echo off.
func passphrase(_ p: Parsed, confirm: Bool) throws -> [UInt8] {
    if let file = p.options["--passphrase-file"] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw StoreError.io(path: file, operation: "read", errno: errno == 0 ? ENOENT : errno)
        }
        let line = Array(data.prefix { $0 != 0x0a && $0 != 0x0d })
        guard !line.isEmpty else { throw CLIError.failure("the passphrase file \(file) is empty") }
        return line
    }
    let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
    guard tty >= 0 else { throw CLIError.usage("no terminal to ask for a passphrase; give --passphrase-file FILE") }
    defer { close(tty) }
    func ask(_ prompt: String) -> [UInt8] {
        writeFD(tty, prompt.utf8)
        var old = termios()
        tcgetattr(tty, &old)
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(tty, TCSANOW, &quiet)
        defer { tcsetattr(tty, TCSANOW, &old); writeFD(tty, "\n".utf8) }
        var line = [UInt8]()
        var c: UInt8 = 0
        while read(tty, &c, 1) == 1 && c != 0x0a && c != 0x0d { line.append(c) }
        return line
    }
    let first = ask("passphrase: ")
    guard !first.isEmpty else { throw CLIError.failure("the passphrase is empty") }
    if confirm && ask("again: ") != first { throw CLIError.failure("the passphrases differ") }
    return first
}
