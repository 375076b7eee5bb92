/// A command-line failure: `.usage` exits 2, `.failure` exits 1.
enum CLIError: Error {
    case usage(String)
    case failure(String)
}

/// What a command accepts, for parsing and for its `--help`.
struct CommandSpec {
    let name: String
    let synopsis: String
    let summary: String
    /// Flags without a value, with their help text.
    var flags: [(String, String)] = []
    /// Options taking a value, with their help text.
    var options: [(String, String)] = []
    var minPositionals = 0
    var maxPositionals = Int.max

    var help: String {
        var s = "usage: datanet [--store DIR] \(synopsis)\n\n\(summary)\n\noptions:\n"
        let all = options.map { ("\($0.0) VALUE", $0.1) } + flags + [("--help", "show this help")]
        for (name, text) in all { s += "  " + name.padding(toLength: 22, withPad: " ", startingAt: 0) + text + "\n" }
        return s
    }
}

/// Parsed arguments of one command.
struct Parsed {
    /// The subcommand's name.
    var command = ""
    var positionals: [String] = []
    /// The positionals as the bytes the shell passed (paths need not be UTF-8; `positionals`
    /// holds them with invalid bytes replaced).
    var rawPositionals: [[UInt8]] = []
    var flags: Set<String> = []
    var options: [String: String] = [:]
    /// Every value of each option, in order (options may repeat: `--curator A --curator B`).
    var repeated: [String: [String]] = [:]

    func has(_ flag: String) -> Bool { flags.contains(flag) }

    /// All values given for a repeatable option; commas also separate values.
    func all(_ name: String) -> [String] {
        (repeated[name] ?? []).flatMap { $0.split(separator: ",").map(String.init) }
    }
}

/// Parses `args` against `spec`; `--` ends option parsing. Throws `.usage` naming the problem.
/// `raw`, when given, holds the same arguments as bytes.
func parse(_ args: [String], raw: [[UInt8]]? = nil, _ spec: CommandSpec) throws -> Parsed {
    var p = Parsed()
    p.command = spec.name
    var i = 0
    var onlyPositionals = false
    while i < args.count {
        let a = args[i]
        i += 1
        if onlyPositionals || !a.hasPrefix("-") || a == "-" {
            p.positionals.append(a)
            p.rawPositionals.append(raw?[i - 1] ?? Array(a.utf8))
            continue
        }
        if a == "--" { onlyPositionals = true; continue }
        var name = a, inlineValue: String?
        if let eq = a.firstIndex(of: "="), a.hasPrefix("--") {
            name = String(a[..<eq]); inlineValue = String(a[a.index(after: eq)...])
        }
        if spec.options.contains(where: { $0.0 == name }) {
            let value: String
            if let v = inlineValue { value = v } else {
                guard i < args.count else { throw CLIError.usage("option \(name) needs a value") }
                value = args[i]
                i += 1
            }
            p.options[name] = value
            p.repeated[name, default: []].append(value)
        } else if spec.flags.contains(where: { $0.0 == name }) || name == "--help" {
            guard inlineValue == nil else { throw CLIError.usage("flag \(name) takes no value") }
            p.flags.insert(name)
        } else {
            let hint = nearest(name, in: (spec.options + spec.flags).map(\.0) + ["--help"]).map { "; did you mean \($0)?" } ?? ""
            throw CLIError.usage("unknown option \(a) for `datanet \(spec.name)`\(hint) (see `datanet \(spec.name) --help`)")
        }
    }
    if p.has("--help") { return p }
    if p.positionals.count < spec.minPositionals {
        throw CLIError.usage("`datanet \(spec.name)` needs more arguments: \(spec.synopsis)")
    }
    if p.positionals.count > spec.maxPositionals {
        throw CLIError.usage("`datanet \(spec.name)` takes at most \(spec.maxPositionals) argument(s): \(spec.synopsis)")
    }
    return p
}

/// Parses a non-negative integer option, or throws `.usage`.
func integerOption(_ p: Parsed, _ name: String) throws -> Int? {
    guard let v = p.options[name] else { return nil }
    guard let n = Int(v), n >= 0 else { throw CLIError.usage("\(name) needs a non-negative integer, got '\(v)'") }
    return n
}
