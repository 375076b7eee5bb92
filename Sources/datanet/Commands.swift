import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

/// A subcommand: its spec and what it does; returns the exit code.
struct Command {
    let spec: CommandSpec
    let run: (Parsed) throws -> Int32
}

let json = ("--json", "print JSON for scripts")
let quiet = ("--quiet", "no progress bar")
let offline = ("--offline", "never fetch content from a peer: a lack is an error")

nonisolated(unsafe) let coreCommands: [Command] = [
    Command(spec: CommandSpec(name: "init", synopsis: "init", summary: "Create an empty store (nothing happens if one exists).",
                              maxPositionals: 0)) { _ in
        let existed = access(storeDir + "/data.mdb", F_OK) == 0
        _ = try ObjectStore(directory: storeDir, create: true)
        out(existed ? "store already exists at \(storeDir)" : "initialized empty store at \(storeDir)")
        return 0
    },
    Command(spec: CommandSpec(name: "add", synopsis: "add PATH...",
                              summary: "Add files and folders. Prints `<id>  <path>` per path: a blob id for a file, a tree id for a folder.",
                              flags: [json, quiet], minPositionals: 1), run: runAdd),
    Command(spec: CommandSpec(name: "cat", synopsis: "cat ID [-o FILE] [--offline]",
                              summary: "Write a file's (or a chunk's) bytes to standard output or FILE, checking every chunk's hash. A contribution whose content this store lacks (after `sync --records-only`) is fetched from a peer first, unless --offline.",
                              flags: [quiet, offline], options: [("-o", "write to FILE instead (replaced atomically)")],
                              minPositionals: 1, maxPositionals: 1), run: runCat),
    Command(spec: CommandSpec(name: "ls", synopsis: "ls [DATANET[@SIZE] | ID | PATH] [-l]",
                              summary: """
                              Without an argument: what was added or contributed here (id, kind, size, path). With a Datanet: the \
                              files accepted at its newest checkpoint (or the one of SIZE), one path per line as `datanet export` \
                              writes them under data/, like `git ls-files`. With a contribution id, an object id or a path added \
                              here: the files of that folder, or the file.
                              """,
                              flags: [json, ("-l", "also size, content id and contribution")], maxPositionals: 1), run: runLs),
    Command(spec: CommandSpec(name: "stat", synopsis: "stat [ID]",
                              summary: "For a blob: size, Merkle root and every chunk. For a tree: its entries. Without an id: store totals.",
                              flags: [json], maxPositionals: 1), run: runStat),
    Command(spec: CommandSpec(name: "prove", synopsis: "prove ID --chunk N [-o FILE]",
                              summary: "Print a JSON proof that chunk N (from 0) sits at its offset in blob ID.",
                              options: [("--chunk", "chunk index"), ("-o", "write the proof to FILE")],
                              minPositionals: 1, maxPositionals: 1), run: runProve),
    Command(spec: CommandSpec(name: "verify", synopsis: "verify FILE|ID [--datanet ID] [--self-contained] [--allow-withdrawn] [--strict] | verify MODEL [--allow-withdrawn] | verify --manifest DIR [--content-only]",
                              summary: """
                              Check a receipt (a file, or made here for contribution ID) or a chunk proof offline, printing a \
                              tree of checks. A receipt is anchored at --datanet ID or at a pinned Datanet; without an anchor it \
                              prints NOT ANCHORED and fails unless --self-contained. A contribution this store's log shows \
                              withdrawn or taken down fails unless --allow-withdrawn. Checks a receipt cannot prove are marked \
                              ~ (the sequencer's statement, checked by `datanet audit`) and named in the summary; --strict \
                              checks them too, and fails unless this store holds the log to the receipt's checkpoint and it \
                              passes audit. With --manifest, check an exported \
                              folder: every file against its content id, and that this store's log accepted every listed \
                              contribution at CHECKPOINT and holds no tombstone for it; where acceptance cannot be checked \
                              it fails, unless --content-only (then it prints CONTENT ONLY). A MODEL (name or record id): its \
                              record and builder, its leaf's inclusion in the newest signed checkpoint, the checkpoint it was trained \
                              on, the artifact's bytes against the bound blob, and content it was trained on withdrawn since ("trained \
                              on content withdrawn at leaf i"; fails unless --allow-withdrawn). Exit 0 when every check holds, 1 otherwise.
                              """,
                              flags: [json, ("-v", "with --manifest: list every check, not only the failures"),
                                      ("--self-contained", "accept a receipt that holds on its own, without an anchor"),
                                      ("--allow-withdrawn", "accept contributions withdrawn or taken down since (receipts, manifests, models)"),
                                      ("--strict", "also check what a receipt takes on the sequencer's word, against this store's audited log"),
                                      ("--content-only", "with --manifest: check the files alone, not acceptance")],
                              options: [("--datanet", "the Datanet id to anchor at (64 hex digits, or one this store follows)"),
                                        ("--manifest", "check an exported folder (see above)")],
                              maxPositionals: 1), run: runVerify),
    Command(spec: CommandSpec(name: "receipt", synopsis: "receipt ID [-o FILE] | receipt --refresh FILE",
                              summary: """
                              Write a contribution's receipt (schema/receipt.md): the genesis, every policy and key handoff, \
                              its intake and decision leaves with inclusion proofs, and the newest checkpoint held. --refresh \
                              remakes FILE against the newest checkpoint, with a consistency proof from the old one.
                              """,
                              options: [("-o", "write to FILE (replaced atomically)"), ("--refresh", "refresh this receipt file in place (or to -o)")],
                              maxPositionals: 1), run: runReceipt),
    Command(spec: CommandSpec(name: "audit", synopsis: "audit DATANET",
                              summary: """
                              Replay a Datanet's whole log from its genesis as an independent verifier: every signature, policy \
                              transition and quorum, key handoff, intake and decision under the rules then in force (allowed \
                              authors, quotas, duplicates in intake order), and every signed checkpoint held against the replayed \
                              roots. Prints each violation with its leaf index and portable evidence (--json); exit 1 on any.
                              """,
                              flags: [json, quiet], minPositionals: 1, maxPositionals: 1), run: runAudit),
    Command(spec: CommandSpec(name: "bundle", synopsis: "bundle export DATANET [--for CONTACT | --since-checkpoint FILE | --since SIZE] [--records-only] [--seal-to WHO]... -o FILE | bundle import FILE [--from CONTACT]",
                              summary: """
                              Move a Datanet between stores in one file (schema/bundle.md): its leaves from SIZE on, checkpoints, the \
                              records \
                              pending here (proposals, reviews, policies), sidecars, fork evidence and, unless --records-only, the \
                              chunks, blobs and trees they name. --seal-to encrypts it to each named recipient (a public identity \
                              file from `datanet id export`, or a local identity name); a private Datanet's bundle must be sealed, \
                              to its readers, curators, owner or sequencer. Import opens a sealed bundle with this store's \
                              identities, checks everything as `audit` does and applies it in one transaction, or changes nothing. \
                              Without bookkeeping: `import --from CONTACT` remembers how far that contact holds the Datanet, and \
                              `export --for CONTACT` sends only what lies beyond (sealed to them when the Datanet is private).
                              """,
                              flags: [json, ("--records-only", "export: leave content objects out")],
                              options: [("--since", "export: first leaf to include (default 0)"), ("-o", "export: the bundle file to write"),
                                        ("--for", "export: what this contact lacks, as far as bundles from them showed"),
                                        ("--since-checkpoint", "export: from the size of this signed checkpoint note (checked against this log)"),
                                        ("--from", "import: the contact who sent it (remembered for --for)"),
                                        ("--seal-to", "export: seal to this recipient (repeatable)")],
                              minPositionals: 2, maxPositionals: 2), run: runBundle),
    Command(spec: CommandSpec(name: "export", synopsis: "export DATANET[@SIZE] DIR [--format files|croissant|hf] [--update] [--offline]",
                              summary: """
                              Write the contributions accepted at a checkpoint (the newest, or the one of SIZE) into the new folder \
                              DIR as plain files under data/, with MANIFEST.jsonl (a header, then per contribution: path, content id, \
                              SHA-256 of each file, contribution, author, license, intake index, label and metadata), DATASET.md and \
                              CHECKPOINT (schema/export.md). --format croissant adds croissant.json (Croissant 1.1: files with \
                              SHA-256, a record set per CSV or JSON Lines file); --format hf adds README.md, a dataset card with the \
                              configs `datasets.load_dataset(DIR)` reads. --update refreshes an existing export in place (its \
                              layout kept unless --format says otherwise). Check it anywhere with `datanet verify --manifest DIR`. \
                              Content this store lacks (after `sync --records-only`) is fetched from a peer first, unless --offline.
                              """,
                              flags: [json, quiet, offline, ("--update", "refresh the export already in DIR")],
                              options: [("--format", "files (default), croissant or hf")],
                              minPositionals: 2, maxPositionals: 2), run: runExport),
    Command(spec: CommandSpec(name: "withdraw", synopsis: "withdraw DATANET CONTRIBUTION [--reason TEXT]",
                              summary: """
                              Withdraw your contribution (--as its author): a signed tombstone record that, once sequenced, makes \
                              honest replicas drop its content and sidecar (file name, free metadata); its id, leaves and proofs stay valid.
                              """,
                              options: [("--reason", "why")], minPositionals: 2, maxPositionals: 2), run: runTombstone),
    Command(spec: CommandSpec(name: "takedown", synopsis: "takedown DATANET CONTRIBUTION --reason TEXT",
                              summary: """
                              Take a contribution down (--as the owner, or a curator: a curator quorum collects signatures with \
                              `datanet sign`). Sequenced as a tombstone leaf, like a withdrawal.
                              """,
                              options: [("--reason", "why (required)")], minPositionals: 2, maxPositionals: 2), run: runTombstone),
    Command(spec: CommandSpec(name: "gc", synopsis: "gc [--dry-run]",
                              summary: """
                              Delete content that nothing live reaches: not a contribution in a log here (unless withdrawn or taken \
                              down: that content is dropped), not a pending proposal, not something `add`ed, not an add in progress.
                              """,
                              flags: [json, ("--dry-run", "only count what would be deleted")], maxPositionals: 0), run: runGC),
    Command(spec: CommandSpec(name: "pin", synopsis: "pin [DATANET] [--remove]",
                              summary: "Trust a Datanet (64-hex id, or one this store follows) as the anchor for `verify`, and remember the newest checkpoint held or later verified, which every later receipt must agree with (trust on first use). Without DATANET: list pins.",
                              flags: [json, ("--remove", "unpin")], maxPositionals: 1), run: runPin),
    Command(spec: CommandSpec(name: "fsck", synopsis: "fsck",
                              summary: "Re-hash every object and check every manifest and tree; rebuild every Datanet's index from its leaves and compare, and check the leaves against every checkpoint. Exit 1 if anything is damaged.",
                              flags: [json, quiet], maxPositionals: 0), run: runFsck),
    Command(spec: CommandSpec(name: "id", synopsis: "id new NAME | ls | show [NAME] | export NAME | import FILE|KEY [--name NAME] | rm NAME | backup NAME -o FILE | restore FILE",
                              summary: """
                              Manage identities and contacts. `new` makes an Ed25519 + X25519 key pair (key file mode 0600); `ls` and `show` \
                              list them; `export` prints the public identity as JSON; `import` keeps someone else's public identity \
                              (a file `id export` wrote, - for standard input, or a bare 64-digit key with --name) as a contact, whose \
                              name every option taking a key then accepts; `rm` forgets a contact; `backup` writes the keys sealed under a \
                              passphrase of at least 12 characters (scrypt + ChaCha20-Poly1305), or under one it generates and \
                              prints once (--generate-passphrase); `restore` reads such a file back. A private key is never printed.
                              """,
                              flags: [json, ("--generate-passphrase", "backup: make a random passphrase (125 bits) and print it once")], options: [("-o", "backup: the file to write"),
                                                       ("--name", "import: the contact's name (default: the name in the file)"),
                                                       ("--passphrase-file", "read the passphrase from this file's first line instead of asking")],
                              minPositionals: 1, maxPositionals: 2), run: runIdentity),
    Command(spec: CommandSpec(name: "peer", synopsis: "peer add NAME HOST:PORT [--key CONTACT|KEY] [--repin] | ls | rm NAME",
                              summary: """
                              Manage peers: contacts with an address where they serve. `add` without --key connects and pins the \
                              Datanet key the peer proves in the handshake (trust on first use: check it with them); a peer already \
                              pinned that presents another key is refused with both keys shown, unless --repin. `rm` forgets the \
                              address and keeps the contact.
                              """,
                              flags: [json, ("--repin", "add: accept a changed key for a peer already pinned")],
                              options: [("--key", "add: the peer's key (a contact name, key prefix or identity file) instead of asking the peer")],
                              minPositionals: 1, maxPositionals: 3), run: runPeer),
    Command(spec: CommandSpec(name: "serve", synopsis: "serve [--listen HOST:PORT] [--as NAME] [--sequence-every SECONDS] [--proposal-max-age AGE] [--json]",
                              summary: """
                              Serve this store's Datanets to peers over an authenticated, encrypted connection (Noise XX; the \
                              identity --as or the configured one is the key peers see). A peer sees, pulls and pushes only the \
                              Datanets its key may read (to one it may contribute to but not read, it may push only its own \
                              pending records); what it pushes is checked as a bundle import is, and kept only for Datanets held here. With --sequence-every, Datanets whose sequencer key this store holds are sequenced that often \
                              when records are pending. Pending contributions older than --proposal-max-age are dropped (and not \
                              taken again) every minute, with reviews, policy proposals and tombstones they leave moot. Ctrl-C (or \
                              SIGTERM) stops accepting and lets sessions finish.
                              """,
                              flags: [(json.0, "one JSON event per line")],
                              options: [("--listen", "address to listen on (default 127.0.0.1:7420; port 0 picks one)"),
                                        ("--as", "the identity to serve as"),
                                        ("--sequence-every", "sequence pending records every SECONDS"),
                                        ("--proposal-max-age", "drop pending contributions older than this (default 30d; s, m, h, d)"),
                                        ("--max-connections", "sessions served at once (default 64)"),
                                        ("--max-handshakes", "handshakes under way at once (default 16); more connections wait their turn"),
                                        ("--handshake-timeout", "seconds a peer has to finish the handshake (default 10)"),
                                        ("--max-push", "the largest bundle a peer may push (default 64GiB)")],
                              maxPositionals: 0), run: runServe),
    Command(spec: CommandSpec(name: "sync", synopsis: "sync PEER|HOST:PORT [DATANET...] [--records-only] [--push|--pull] [--proposal-max-age AGE] [--json]",
                              summary: """
                              Replicate Datanets with a peer: pull what it has and this store lacks (cloning Datanets not held \
                              here), then push what it lacks (leaves and pending records: proposals, reviews, policy proposals). \
                              Pending records are compared by set reconciliation (Negentropy), so the traffic grows with the \
                              difference, not the set. To a Datanet this identity may contribute to but not read, only its own \
                              pending records go. Everything received is verified before it is kept. A peer added with \
                              `datanet peer add` must present the key pinned for it. Pending contributions older than \
                              --proposal-max-age are dropped here first (and not taken again). Prints one summary line: what moved \
                              each way, round trips, bytes on the wire.
                              """,
                              flags: [json, ("--records-only", "move records and leaves, not content"),
                                      ("--push", "only send"), ("--pull", "only receive")],
                              options: [("--as", "the identity to connect as"),
                                        ("--proposal-max-age", "drop pending contributions older than this first (default 30d; s, m, h, d)")],
                              minPositionals: 1), run: runSync),
    Command(spec: CommandSpec(name: "fetch", synopsis: "fetch DATANET [PATH-PREFIX|ID|MODEL] [--from PEER] [--json]",
                              summary: """
                              Fetch the content of a Datanet's contributions that this store lacks (after `sync --records-only`) \
                              from its peers: one contribution by id, the files whose names start with PATH-PREFIX, or every \
                              contribution not withdrawn; or a model's artifact (MODEL: its name or record id). Each object is \
                              hashed before it is kept; a fetch cut short resumes.
                              """,
                              flags: [json], options: [("--from", "fetch from this peer only"), ("--as", "the identity to connect as")],
                              minPositionals: 1, maxPositionals: 2), run: runFetch),
    Command(spec: CommandSpec(name: "config", synopsis: "config [KEY [VALUE]] [--unset]",
                              summary: "Show or change this store's settings. `identity NAME`: the identity that acts when --as is not given.",
                              flags: [json, ("--unset", "remove the setting")], maxPositionals: 2), run: runConfig),
    Command(spec: CommandSpec(name: "create", synopsis: "create NAME [--private] [--open | --allow KEY...] [--reader KEY...] [--curator KEY...] [--quorum K] [--sequencer KEY]",
                              summary: "Create a Datanet owned by the --as identity. KEY is a public key, a unique prefix of one, a local identity or contact name, or a public identity file; options repeat or take comma lists. Curators default to the owner; the sequencer to a new identity made for it (a separate, hot key: the owner's stays cold), unless --sequencer names one.",
                              flags: [json, ("--private", "only readers may see it"), ("--open", "anyone may contribute (the default)")],
                              options: [("--allow", "who may contribute"), ("--reader", "who may read (with --private)"), ("--curator", "a curator"),
                                        ("--quorum", "accepting reviews needed"), ("--sequencer", "the sequencer key"),
                                        ("--max-pending", "quota: undecided proposals per author (100)"),
                                        ("--max-pending-bytes", "quota: their bytes per author (1 GiB)")],
                              minPositionals: 1, maxPositionals: 1), run: runCreate),
    Command(spec: CommandSpec(name: "contribute", synopsis: "contribute DATANET PATH... [--as-one | --split-every N] [--label L] [--license SPDX] [--media-type T] [--meta k=v]...",
                              summary: "Offline: add files or folders (one contribution each), sign as the --as identity, and queue the proposals. Prints each id (for up to 10, or with -v) and a summary line with exact and near-duplicates found.",
                              flags: [json, quiet, ("-v", "list every contribution made"), ("--as-one", "make one contribution (a folder) of all the paths")],
                              options: [("--split-every", "make contributions (folders) of N files each: of the one folder given, or of the paths"), ("--label", "label"), ("--license", "SPDX license expression"),
                                                              ("--media-type", "media type"), ("--meta", "key=value, kept in the erasable sidecar")],
                              minPositionals: 2), run: runContribute),
    Command(spec: CommandSpec(name: "review", synopsis: "review DATANET --accept|--reject ID... [--ids-from FILE|-] [--reason TEXT]",
                              summary: "Review one or more contributions as the --as curator; one review record covers them all. Ids may be hex prefixes; `review D ID... accept|reject` also works. A review of a contribution already decided is refused, naming the decision's leaf.",
                              flags: [("--accept", "accept them"), ("--reject", "reject them")],
                              options: [("--reason", "why"), ("--ids-from", "read more ids, separated by white space, from FILE (- for standard input)")],
                              minPositionals: 1), run: runReview),
    Command(spec: CommandSpec(name: "policy", synopsis: "policy DATANET add-curator|remove-curator|allow|deny|add-reader|remove-reader|add-builder|remove-builder|quorum|visibility|set-sequencer VALUE",
                              summary: "Propose a policy change on top of the policy in force, signed by --as. It applies when sequenced with the owner's signature or a curator quorum (collect signatures with `datanet sign`).",
                              minPositionals: 3, maxPositionals: 3), run: runPolicy),
    Command(spec: CommandSpec(name: "sign", synopsis: "sign ID", summary: "Add the --as identity's signature to a pending record (a curator quorum on a policy change).",
                              minPositionals: 1, maxPositionals: 1), run: runSign),
    Command(spec: CommandSpec(name: "sequence", synopsis: "sequence DATANET [-v]",
                              summary: "As the sequencer: take pending proposals in (intake leaves and promises), apply decisions whose quorum is met, policy changes and tombstones; every 25,000 leaves are committed durably together with a signed checkpoint of their size. Prints refusals and one summary line; -v lists every new leaf.",
                              flags: [json, ("-v", "list every new leaf")], minPositionals: 1, maxPositionals: 1), run: runSequence),
    Command(spec: CommandSpec(name: "datanets", synopsis: "datanets", summary: "List the Datanets this store follows.", flags: [json], maxPositionals: 0), run: runDatanets),
    Command(spec: CommandSpec(name: "info", synopsis: "info DATANET",
                              summary: "The policy in force: owner, sequencer, curators and quorum, who may contribute and read, quotas; the log's size and newest checkpoint; whether it is pinned. Names of local identities are shown beside keys.",
                              flags: [json], minPositionals: 1, maxPositionals: 1), run: runInfo),
    Command(spec: CommandSpec(name: "status", synopsis: "status [DATANET] [--mine|--to-review]",
                              summary: "What became of each contribution: queued here, taken in and awaiting review (who has reviewed, how many accepts are still needed), accepted (by whom, at which leaf), rejected (with the curators' reasons), withdrawn or taken down. Without DATANET: every Datanet this store follows.",
                              flags: [json, ("--mine", "only contributions by the signing identity (--as)"),
                                      ("--to-review", "only what still needs the signing identity's review")],
                              maxPositionals: 1), run: runStatus),
    Command(spec: CommandSpec(name: "pending", synopsis: "pending DATANET", summary: "List records queued for the sequencer, then contributions taken in and awaiting review, with near-duplicate flags.", flags: [json],
                              minPositionals: 1, maxPositionals: 1), run: runPending),
    Command(spec: CommandSpec(name: "log", synopsis: "log DATANET [-n N | --all] [--from N] [--author KEY] [--kind KIND]",
                              summary: "Show a Datanet's log, newest 20 leaves unless -n, --all or --from says otherwise (--json lists every leaf), and its latest checkpoint. Leaves stream: a log of any size lists at once.",
                              flags: [json, ("--all", "every leaf")],
                              options: [("--from", "first leaf index"), ("-n", "the newest N leaves (that match)"),
                                        ("--author", "only leaves whose record this key signed or authored"),
                                        ("--kind", "only leaves of these kinds: intake, decision, review, policy, set-sequencer, continuation, tombstone")],
                              minPositionals: 1, maxPositionals: 1), run: runLog),
    Command(spec: CommandSpec(name: "show", synopsis: "show ID", summary: "Show a record: kind, signers, place in the log, decision, intake promise.",
                              flags: [json], minPositionals: 1, maxPositionals: 1), run: runShow),
    Command(spec: CommandSpec(name: "continue", synopsis: "continue DATANET --size N --root R --sequencer KEY",
                              summary: "As the owner, after the sequencer key was lost: name the last good (size, root) and a new sequencer key held in this store, which appends the continuation and signs from then on.",
                              options: [("--size", "last good size"), ("--root", "root at that size (hex or base64)"), ("--sequencer", "the new sequencer key")],
                              minPositionals: 1, maxPositionals: 1), run: runContinue),
    Command(spec: CommandSpec(name: "checkpoint", synopsis: "checkpoint DATANET [--observe FILE]",
                              summary: "Print the latest signed checkpoint, or check one received from elsewhere against this log: exit 1 and print fork evidence when they cannot both hold.",
                              options: [("--observe", "a signed checkpoint note to check and remember")], minPositionals: 1, maxPositionals: 1), run: runCheckpoint),
    Command(spec: CommandSpec(name: "diff", synopsis: "diff DATANET@SIZE [DATANET@SIZE] [--key COLUMN] [-v]",
                              summary: """
                              What changed between two checkpoints (the second defaults to the newest): contributions accepted and \
                              withdrawn, with their files and line counts; for tables (CSV files sharing a header, JSON Lines \
                              objects) the rows added and removed, and with --key the rows changed, matched by that column.
                              """,
                              flags: [json, ("-v", "list every row, not the first 10 of each kind")],
                              options: [("--key", "the column (CSV header name, JSON key) that identifies a row")],
                              minPositionals: 1, maxPositionals: 2), run: runDiff),
    Command(spec: CommandSpec(name: "completion", synopsis: "completion bash|zsh",
                              summary: "Print a shell completion script: eval \"$(datanet completion bash)\" in ~/.bashrc, or the zsh one in ~/.zshrc.",
                              minPositionals: 1, maxPositionals: 1), run: runCompletion),
    Command(spec: CommandSpec(name: "compact", synopsis: "compact",
                              summary: "Rewrite the store without its free pages (needs the store to itself).",
                              flags: [json], maxPositionals: 0), run: runCompact),
]

func openStore() throws -> ObjectStore { try ObjectStore(directory: storeDir) }

func runAdd(_ p: Parsed) throws -> Int32 {
    let store = try openStore()
    let plans = try Ingest.plan(bytes: p.rawPositionals)
    let bar = ProgressBar(total: plans.reduce(0) { $0 + $1.node.totalBytes }, label: "add", quiet: p.has("--quiet"))
    let ingest = Ingest(store: store)
    ingest.progress = { bar.update($0) }
    let results: [AddResult]
    do { results = try ingest.add(plans: plans) } catch { bar.finish(); throw error }
    bar.finish()
    if p.has("--json") {
        try printJSON(results.map { ["id": $0.id.hex, "kind": $0.kind.description, "path": $0.path,
                                      "size": $0.size, "new_bytes": $0.newBytes] as [String: Any] })
    } else {
        for r in results { out("\(r.id.hex)  \(r.path)") }
    }
    return 0
}

func runCat(_ p: Parsed) throws -> Int32 {
    let store = try openStore()
    let ledger = ledgerIfAny(store)
    let target = try resolveContent(ledger, store, p.positionals[0])
    let (kind, id) = (target.kind, target.id)
    // A contribution known here whose content is not (a records-only sync): fetched first.
    if let r = target.contribution, let ledger, let c = try contribution(ledger, r) {
        _ = try fetchMissing(ledger, c.datanet, [(r, c)], offline: p.has("--offline"), quiet: p.has("--quiet") || p.options["-o"] == nil)
    }
    if kind == .tree { throw CLIError.failure("\(p.positionals[0]) is a folder; `datanet ls \(p.positionals[0])` lists it") }
    let dest = p.options["-o"]
    let temporary = try dest.map { try createTemporaryFile(beside: $0) }
    let (fd, tmp) = (temporary?.fd ?? 1, temporary?.path)
    do {
        if kind == .chunk {
            guard let bytes = try store.chunk(id), ObjectID(SHA256.hash(bytes)) == id else {
                throw StoreError.corrupt("chunk \(id) does not match its id")
            }
            try writeAll(fd, bytes, path: dest ?? "standard output")
        } else {
            let size = try store.blob(id)?.size ?? 0
            let bar = ProgressBar(total: size, label: "cat", quiet: p.has("--quiet") || dest == nil)
            try store.writeBlob(id, to: fd) { bar.update($0) }
            bar.finish()
        }
        if let tmp, let dest {
            guard fsync(fd) == 0, close(fd) == 0 else { throw StoreError.io(path: dest, operation: "write", errno: errno) }
            guard rename(tmp, dest) == 0 else { throw StoreError.io(path: dest, operation: "write", errno: errno) }
        }
    } catch {
        if let tmp { close(fd); unlink(tmp) }
        throw error
    }
    return 0
}

func runLs(_ p: Parsed) throws -> Int32 {
    let store = try openStore()
    if let text = p.positionals.first { return try listFiles(p, store, text) }
    let objects = try store.addedObjects()
    if p.has("--json") {
        try printJSON(objects.map { ["id": $0.id.hex, "kind": $0.kind.description, "size": $0.size,
                                      "path": $0.path, "added": $0.time] as [String: Any] })
    } else {
        for o in objects { out("\(o.id.hex)  \(o.kind)  \(String(o.size).leftPad(12))  \(o.path)") }
    }
    return 0
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

/// `ls DATANET[@SIZE]`, or `ls` of a contribution, object or path: one file per line.
func listFiles(_ p: Parsed, _ store: ObjectStore, _ text: String) throws -> Int32 {
    let ledger = ledgerIfAny(store)
    var rows = [(path: String, size: UInt64, content: ObjectID, contribution: RecordID?)]()
    if let ledger, let (st, size) = try? datanetAt(ledger, text) {
        rows = try ledger.acceptedFiles(st.id, at: size).map { ($0.path, $0.size, $0.content, $0.contribution) }
    } else {
        let t = try resolveContent(ledger, store, text)
        func walk(_ kind: ObjectKind, _ id: ObjectID, _ path: String, _ size: UInt64) throws {
            if kind == .tree, let tree = try store.tree(id) {
                for e in tree.entries { try walk(e.kind, e.id, path.isEmpty ? ExportedName.encode(e.name) : path + "/" + ExportedName.encode(e.name), e.size) }
            } else {
                rows.append((path.isEmpty ? (t.inner ?? t.root?.path ?? id.hex) : path, size, id, t.contribution))
            }
        }
        let size = t.kind == .blob ? try store.blob(t.id)?.size ?? 0 : 0
        try walk(t.kind, t.id, "", size)
    }
    if p.has("--json") {
        try printJSON(rows.map { ["path": terminalSafe($0.path), "size": $0.size, "content": $0.content.hex,
                                  "contribution": $0.contribution?.hex as Any? ?? NSNull()] as [String: Any] })
    } else {
        var w = LineWriter()
        for r in rows {
            if p.has("-l") {
                w.number(r.size, width: 12); w.text("  "); w.hex(r.content, 12); w.text("  ")
                if let c = r.contribution { w.hex(c, 12) } else { w.text("-") }
                w.text("  ")
            }
            w.text(terminalSafe(r.path))
            w.newline()
        }
        w.flush()
    }
    return 0
}
