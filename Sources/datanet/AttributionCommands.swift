import DatanetAttribution
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import Foundation

/// Every command: the store's, then the Model Factory's and attribution's.
nonisolated(unsafe) let commands: [Command] = coreCommands + attributionCommands

/// The training set, models, and attribution of their outputs to contributions.
nonisolated(unsafe) let attributionCommands: [Command] = [
    Command(spec: CommandSpec(name: "dataset", synopsis: "dataset DATANET[@SIZE] [--licenses SPDX,...] [--json]",
                              summary: """
                              The training set of a checkpoint (the newest by default; schema/training.md): its accepted \
                              contributions under no tombstone, in intake order, read as documents (.txt, .md), labeled text \
                              (.jsonl) and numeric examples (.csv). Prints the contributions, documents, examples, bytes, labels and \
                              licenses, and each contribution left out and why (malformed content with its file and line, a \
                              license outside --licenses, content this store does not hold).
                              """,
                              flags: [json], options: [("--licenses", "only content under these SPDX licenses (comma-separated)")],
                              minPositionals: 1, maxPositionals: 1), run: runDataset),
    Command(spec: CommandSpec(name: "model", synopsis: "model train DATANET[@SIZE] --kind knn|ngram [--features text|numeric] [--k K] [--scale standard|none] [--licenses SPDX,...] [--name NAME] [--json] | model import FILE --datanet D --checkpoint SIZE --name NAME [--base MODEL] [--trainer NAME] [--trainer-version V] | model ls [DATANET] | model show MODEL",
                              summary: """
                              train: train a model on the training set of a checkpoint (`datanet dataset`; schema/training.md): a \
                              deterministic k-nearest-neighbour classifier over labeled text (TF-IDF cosine) or numeric examples \
                              (standardized squared Euclidean). Its artifact (schema/model.md) is stored as a blob (the same \
                              checkpoint and configuration give the same artifact id on every machine) and bound to the checkpoint \
                              by a signed `model` record, registered as a model leaf when the sequencer sequences it. Signing takes \
                              the owner, a curator or a builder (`datanet policy D add-builder KEY`). \
                              import: register a model trained elsewhere (an LLM's weights, say) on a checkpoint; the file is stored \
                              chunked, so a variant of a stored model costs only its changed chunks (reported). \
                              --kind ngram: an ∞-gram language model (schema/spans.md): the span index of the training set's \
                              documents, longest-suffix backoff at byte level; `datanet generate` samples from it. \
                              ls: the models held here, registered or pending. show: one model (by record id, prefix or name; a \
                              name means the newest of that name). `datanet verify MODEL` checks one.
                              """,
                              flags: [json],
                              options: [("--kind", "the trainer: knn or ngram"), ("--features", "text or numeric, when the set holds both"),
                                        ("--k", "neighbours that vote (default 5)"), ("--scale", "numeric features: standard (default) or none"),
                                        ("--checkpoint", "the checkpoint's size (or DATANET@SIZE)"), ("--licenses", "only content under these SPDX licenses"),
                                        ("--name", "the model's name (default DATANET-SIZE-knn)"), ("--datanet", "import: the Datanet it was trained on"),
                                        ("--base", "import: the model it was derived from"), ("--trainer", "import: the trainer's name (default imported)"),
                                        ("--trainer-version", "import: the trainer's version")],
                              minPositionals: 1, maxPositionals: 2), run: runModel),
    Command(spec: CommandSpec(name: "infer", synopsis: "infer MODEL --input TEXT|--file F [--json]",
                              summary: """
                              Predict with a trained model (its name, record id or artifact id) and show the K training \
                              examples that decided it: contribution, contributor, file and line, distance, and weight in parts per \
                              10^9 (shared by those carrying the predicted label). A numeric model takes comma-separated numbers.
                              """,
                              flags: [json, ("--offline", "refuse instead of fetching a model's artifact from peers"),
                                      ("--record", "keep a signed attribution record of it here (method knn; schema/valuation.md)")],
                              options: [("--input", "the text (or numbers) to classify"), ("--file", "read the input from a file")],
                              minPositionals: 1, maxPositionals: 1), run: runInfer),
    Command(spec: CommandSpec(name: "value", synopsis: "value MODEL --test FILE [--per-example] [--json]",
                              summary: """
                              The exact KNN-Shapley value (schema/valuation.md) of every training example of a kNN model against \
                              a labeled test file in the training format (.jsonl for text models, .csv for numeric), summed per \
                              contribution and per contributor. --per-example prints each example's value in training order.
                              """,
                              flags: [json, ("--per-example", "every training example's value, in training order, round-trip precision"),
                                      ("--offline", "refuse instead of fetching a model's artifact from peers"),
                                      ("--record", "keep a signed valuation record of the per-contribution values here")],
                              options: [("--test", "the labeled test examples")],
                              minPositionals: 1, maxPositionals: 1), run: runValue),
    Command(spec: CommandSpec(name: "generate", synopsis: "generate MODEL --prompt TEXT [--max-bytes N] [--seed S] [--json]",
                              summary: """
                              Generate text with an ∞-gram model (`model train --kind ngram`), byte by byte: each byte drawn from \
                              the counts of the bytes that follow the longest suffix of the text so far found in the training set \
                              (seeded, so the same model, prompt and seed give the same bytes), shown with the suffix length \
                              matched and the contributions holding that continuation. Invalid UTF-8 is printed replaced; --json \
                              gives the exact bytes (base64) and every step.
                              """,
                              flags: [json, ("--offline", "refuse instead of fetching the model's artifact from peers")],
                              options: [("--prompt", "the text to continue"), ("--max-bytes", "bytes to generate (default 200)"),
                                        ("--seed", "the sampler's seed (default 0)")],
                              minPositionals: 1, maxPositionals: 1), run: runGenerate),
    Command(spec: CommandSpec(name: "attribute", synopsis: "attribute count DATANET[@SIZE] TEXT [--json] | attribute DATANET[@SIZE] --text TEXT|--file F [--min-span N] [--record] [--json]",
                              summary: """
                              Exact span attribution over the training set of a checkpoint (schema/spans.md): a suffix-array index \
                              of its documents (text and Markdown files, JSON Lines `text` fields), built on first use and extended \
                              by a shard per new checkpoint. count: the exact occurrences of TEXT's bytes (overlapping, never across \
                              documents), per contribution, with the first 50 locations (a TEXT that starts with - goes after --). Otherwise: every maximal span of the text \
                              (from any model) found in the training set, at least --min-span bytes, with its occurrences and the \
                              contributions holding it; credit to the earliest contribution; spans of stop words only or in more \
                              than 1% of documents earn nothing; each contribution's weight in parts per 10^9.
                              """,
                              flags: [json, quiet, ("--record", "keep a signed attribution record (method spans) here")],
                              options: [("--text", "the text to attribute"), ("--file", "read the text to attribute from a file"),
                                        ("--min-span", "the shortest span listed, in bytes (default 20)")],
                              minPositionals: 1, maxPositionals: 3), run: runAttribute),
]
