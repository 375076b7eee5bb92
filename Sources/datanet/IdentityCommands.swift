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
        if p.has("--json") { try printJSON(try all.map(describe)) }
        else if all.isEmpty && problems.isEmpty { out("no identities; create one with `datanet id new NAME`") }
        else { for i in all { out("\(i.name)  \(i.publicKey)") } }
        for problem in problems { errLine("datanet: \(problem)") }
        if !problems.isEmpty { return 1 }
    case "show":
        let identity = try ids.resolve(arg ?? signerName)
        if p.has("--json") { try printJSON(try describe(identity)) }
        else {
            out("name      \(identity.name)\ned25519   \(identity.publicKey)\nx25519    \(Hex.encode(identity.agreementKey.publicKey))")
            out("created   \(Date(timeIntervalSince1970: Double(identity.createdAt) / 1000).formatted(.iso8601))")
            out("key file  \(ids.directory)/\(identity.name).key")
        }
    case "export":
        let identity = try ids.resolve(arg ?? signerName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        writeFD(1, try encoder.encode(try identity.publicIdentity()) + Data("\n".utf8))
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
        throw CLIError.usage("unknown `datanet id` subcommand '\(sub)' (new, ls, show, export, backup, restore)")
    }
    return 0
}

/// Public facts about an identity, for --json.
func describe(_ i: Identity) throws -> [String: Any] {
    ["name": i.name, "ed25519": i.publicKey.description, "x25519": Hex.encode(i.agreementKey.publicKey), "created_ms": i.createdAt]
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
