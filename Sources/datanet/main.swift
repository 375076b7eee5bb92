import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

// A closed peer must give EPIPE, not kill us with buffered output lost (SWIFT-NOTES §6).
signal(SIGPIPE, SIG_IGN)
keepLargeBuffersInTheHeap()


let usage = """
usage: datanet [--store DIR] [--as NAME] COMMAND [ARGS]

The store is DIR, else $DATANET_DIR, else ~/.datanet. `--as NAME` picks the identity that
signs (else the store's default, `datanet config identity`, else its only one). Wherever a
key is asked for, a contact or identity name, a unique hex prefix or an identity file will do.

content store:
  --version              print the version and the formats this build writes
  completion bash|zsh    print a shell completion script
  init                   create an empty store
  add PATH...            add files and folders; prints <id>  <path>
  cat ID [-o FILE]       write a file's bytes (every chunk re-hashed)
  ls                     list what was added
  stat [ID]              describe an object, or the whole store
  prove ID --chunk N     print a JSON proof that chunk N belongs to file ID
  fsck                   check every object and every Datanet log's index in the store
  compact                rewrite the store without free space
  gc [--dry-run]         delete what nothing live reaches, and tombstoned content

identities and Datanets:
  id new|ls|show|export|backup|restore   Ed25519 signing + X25519 sealing keys
  id import FILE|KEY --name NAME | id rm NAME   other people's public identities (contacts)
  config identity NAME   the identity that acts when --as is not given
  create NAME            create a Datanet (genesis) owned by --as
  contribute D PATH...   offline: add, sign and queue contributions
  review D --accept|--reject ID...       one review record for many contributions
  policy D CHANGE VALUE  propose a policy change (owner or curator quorum)
  sign ID                add your signature to a pending record
  sequence D             take pending records into the log, sign a checkpoint
  continue D --size N --root R --sequencer KEY   replace a lost sequencer key (owner)
  withdraw D ID | takedown D ID --reason T       tombstone a contribution

inspecting:
  info D                 the policy in force, size and newest checkpoint
  status [D] [--mine|--to-review]        what became of each contribution, and what needs review
  datanets | pending D | log D [--from N] | show ID
  checkpoint D [--observe FILE]          print ours, or check another's (fork evidence)

peers:
  peer add NAME HOST:PORT | peer ls | peer rm NAME      contacts with an address, key pinned on first use
  serve [--listen HOST:PORT]             serve this store's Datanets to peers allowed to read them
  sync PEER [D...] [--records-only]      pull what a peer has, push what it lacks, all verified
  fetch D [PREFIX|ID]    fetch content a records-only sync left out

provenance:
  receipt ID [-o FILE] | receipt --refresh FILE  a contribution's provenance in one file
  verify FILE|ID [--datanet D] | verify --manifest DIR   check a receipt, proof or export
  pin [D] [--remove]     trust a Datanet id as the anchor for verify
  audit D                replay a log from its genesis; every violation with evidence
  bundle export D -o FILE | bundle import FILE   move a Datanet between stores
  export D[@SIZE] DIR    accepted contributions as files with a checkable manifest
  diff D@A [D@B] [--key COLUMN]   contributions, files and table rows changed between checkpoints

models and attribution:
  dataset D[@SIZE]       the training set of a checkpoint
  model train D --kind knn|ngram | model import FILE | model ls | model show MODEL
  infer MODEL --input T  | value MODEL --test FILE      kNN prediction and KNN-Shapley values
  attribute count D[@SIZE] TEXT           exact occurrences in the training set, per contribution
  attribute D[@SIZE] --text T|--file F    maximal spans found, credited to the earliest contribution
  generate MODEL --prompt T               ∞-gram text, each byte with the contributions it came from

Run `datanet COMMAND --help` for a command's options.
"""

nonisolated(unsafe) var args = Array(CommandLine.arguments.dropFirst())
/// The same arguments as the bytes the shell passed: Linux paths need not be UTF-8, and
/// `CommandLine.arguments` replaces what is not.
nonisolated(unsafe) var rawArgs: [[UInt8]] = (1..<max(1, Int(CommandLine.argc))).map { i in
    CommandLine.unsafeArgv[i].map { Array(UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: strlen($0))) } ?? []
}
/// The identity chosen with `--as`, if any.
nonisolated(unsafe) var signerName: String?
nonisolated(unsafe) var storeDir = ProcessInfo.processInfo.environment["DATANET_DIR"]
    ?? (ProcessInfo.processInfo.environment["HOME"] ?? ".") + "/.datanet"

func run() throws -> Int32 {
    while let first = args.first, first.hasPrefix("-") {
        if first == "--help" || first == "-h" { out(usage); return 0 }
        if first == "--version" { out(versionText); return 0 }
        if first == "--store" {
            guard args.count > 1 else { throw CLIError.usage("--store needs a folder") }
            storeDir = args[1]
            args.removeFirst(2)
            rawArgs.removeFirst(2)
        } else if first == "--as" {
            guard args.count > 1 else { throw CLIError.usage("--as needs an identity name") }
            signerName = args[1]
            args.removeFirst(2)
            rawArgs.removeFirst(2)
        } else if first.hasPrefix("--store=") {
            storeDir = String(first.dropFirst("--store=".count))
            args.removeFirst()
            rawArgs.removeFirst()
        } else {
            throw CLIError.usage("unknown option \(first) (see `datanet --help`)")
        }
    }
    guard let name = args.first else { err(usage); return 2 }
    if name == "help" { out(usage); return 0 }
    guard let command = commands.first(where: { $0.spec.name == name }) else {
        throw CLIError.usage("unknown command '\(name)'\(commandHint(name)) (see `datanet --help`)")
    }
    let parsed = try parse(Array(args.dropFirst()), raw: rawArgs.count == args.count ? Array(rawArgs.dropFirst()) : nil, command.spec)
    if parsed.has("--help") { out(command.spec.help); return 0 }
    return try command.run(parsed)
}

let code: Int32
do {
    code = try run()
} catch CLIError.usage(let message) {
    errLine("datanet: \(message)")
    code = 2
} catch CLIError.failure(let message) {
    errLine("datanet: \(message)")
    code = 1
} catch let e as IdentityError {
    errLine("datanet: \(e)")
    switch e {
    case .badName, .ambiguous: code = 2
    default: code = 1
    }
} catch let e as LedgerRefusal {
    errLine("datanet: \(e)")
    code = 1
} catch let e as LedgerStateError {
    errLine("datanet: \(e)")
    code = 1
} catch let e as RecordError {
    errLine("datanet: \(e)")
    code = 1
} catch let e as StoreError {
    errLine("datanet: \(e)")
    switch e {
    case .badId, .ambiguous: code = 2
    default: code = 1
    }
} catch {
    errLine("datanet: \(error)")
    code = 1
}
if code != 0, let made = createdLedger { _ = try? made.dropIfUnused() }
exit(code)
