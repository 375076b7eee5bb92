import DatanetLedger

/// Shell completion scripts, generated from the command table that prints `--help`, so a new
/// command or option completes as soon as it exists.

/// The words a command's first argument may be.
let subcommandWords: [String: [String]] = [
    "id": ["new", "ls", "show", "export", "import", "rm", "backup", "restore"],
    "peer": ["add", "ls", "rm"],
    "bundle": ["export", "import"], "config": StoreConfig.keys.keys.sorted(), "completion": ["bash", "zsh"],
]

/// Options whose value is a file or folder (completed as paths).
let pathOptions: Set<String> = ["-o", "--ids-from", "--manifest", "--observe", "--refresh", "--passphrase-file", "--since-checkpoint"]

func runCompletion(_ p: Parsed) throws -> Int32 {
    switch p.positionals[0] {
    case "bash": writeFD(1, bashCompletion().utf8)
    case "zsh": writeFD(1, zshCompletion().utf8)
    default: throw CLIError.usage("completion scripts exist for bash and zsh, not '\(p.positionals[0])'")
    }
    return 0
}

/// A command's option words: options taking a value, flags, and --help.
private func optionWords(_ s: CommandSpec) -> [String] { s.options.map(\.0) + s.flags.map(\.0) + ["--help"] }

/// Single-quoted for a shell: safe whatever the text holds.
private func shellQuoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

func bashCompletion() -> String {
    var cases = ""
    for c in commands {
        let subs = subcommandWords[c.spec.name]?.joined(separator: " ") ?? ""
        cases += "        \(c.spec.name)) opts=\(shellQuoted(optionWords(c.spec).joined(separator: " "))); subs=\(shellQuoted(subs)) ;;\n"
    }
    return """
    # datanet completion for bash. Load it with: eval "$(datanet completion bash)"
    _datanet() {
        local cur prev cmd i opts subs
        cur="${COMP_WORDS[COMP_CWORD]}"
        prev="${COMP_WORDS[COMP_CWORD-1]}"
        cmd=""
        for ((i = 1; i < COMP_CWORD; i++)); do
            case "${COMP_WORDS[i]}" in
                --store|--as) ((i++)) ;;
                -*) ;;
                *) cmd="${COMP_WORDS[i]}"; break ;;
            esac
        done
        case "$prev" in
            --store|\(pathOptions.sorted().joined(separator: "|"))) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            --as) COMPREPLY=($(compgen -W "$(datanet id ls 2>/dev/null | cut -d' ' -f1)" -- "$cur")); return ;;
        esac
        if [[ -z "$cmd" ]]; then
            COMPREPLY=($(compgen -W \(shellQuoted((commands.map(\.spec.name) + ["--store", "--as", "--help", "--version"]).joined(separator: " "))) -- "$cur"))
            return
        fi
        case "$cmd" in
    \(cases)        *) opts=""; subs="" ;;
        esac
        if [[ "$cur" == -* ]]; then
            COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$subs" -- "$cur") $(compgen -f -- "$cur"))
        fi
    }
    complete -o filenames -F _datanet datanet

    """
}

func zshCompletion() -> String {
    /// `[help]` text for _arguments: brackets and colons escaped.
    func help(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "[", with: "\\[").replacingOccurrences(of: "]", with: "\\]")
            .replacingOccurrences(of: ":", with: "\\:")
    }
    var described = ""
    for c in commands {
        described += "        " + shellQuoted(c.spec.name + ":" + help(String(c.spec.summary.prefix { $0 != "." && $0 != "\n" }))) + "\n"
    }
    var cases = ""
    for c in commands {
        var specs = c.spec.options.map { shellQuoted("\($0.0)[\(help($0.1))]:value:" + (pathOptions.contains($0.0) ? "_files" : " ")) }
        specs += c.spec.flags.map { shellQuoted("\($0.0)[\(help($0.1))]") }
        if let subs = subcommandWords[c.spec.name] { specs.append(shellQuoted("1:subcommand:(\(subs.joined(separator: " ")))")) }
        cases += "        \(c.spec.name)) _arguments -S \(specs.joined(separator: " ")) '*:argument:_files' ;;\n"
    }
    return """
    #compdef datanet
    # datanet completion for zsh. Load it with: eval "$(datanet completion zsh)", or save it as
    # _datanet in a folder of $fpath.
    _datanet() {
        local -a cmds
        cmds=(
    \(described)    )
        local i=2 cmd=""
        while (( i < CURRENT )); do
            case ${words[i]} in
                --store|--as) (( i += 2 )); continue ;;
                -*) ;;
                *) cmd=${words[i]}; break ;;
            esac
            (( i++ ))
        done
        if [[ -z $cmd ]]; then
            _arguments '--store[the store folder]:folder:_files -/' '--as[the identity that acts]:identity:' '--help' '--version' ':command:' && return
            _describe 'command' cmds
            return
        fi
        words=(${words[i,-1]})
        (( CURRENT -= i - 1 ))
        case $cmd in
    \(cases)    esac
    }
    if [[ $funcstack[1] == _datanet ]]; then _datanet "$@"; else compdef _datanet datanet; fi

    """
}
