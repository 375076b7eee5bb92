// swift-tools-version:6.0
import PackageDescription

// Layers, lowest first (see docs/ARCHITECTURE.md): CLMDB/CCrypto/CSodium → DatanetCrypto, DatanetCBOR →
// DatanetObjects → DatanetRecords (neither links LMDB) → DatanetAttribution (no LMDB either), DatanetStore →
// DatanetLedger → DatanetSync → datanet.
// A module imports only modules listed before it.
let faults: [SwiftSetting] = [.define("DATANET_FAULTS", .when(configuration: .debug))]

let package = Package(
    name: "Datanet",
    products: [
        .executable(name: "datanet", targets: ["datanet"]),
        .executable(name: "store-churn", targets: ["store-churn"]),
        .executable(name: "cbor-fuzz", targets: ["cbor-fuzz"]),
        .executable(name: "noise-peer", targets: ["noise-peer"]),
        .executable(name: "attribution-bench", targets: ["attribution-bench"]),
        .executable(name: "provenance-fuzz", targets: ["provenance-fuzz"]),
        .executable(name: "record-samples", targets: ["record-samples"]),
        .executable(name: "ledger-bench", targets: ["ledger-bench"]),
        .executable(name: "provenance-bench", targets: ["provenance-bench"]),
        .library(name: "DatanetStore", targets: ["DatanetStore"]),
        .library(name: "DatanetRecords", targets: ["DatanetRecords"]),
    ],
    targets: [
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Ed25519 only (about twice libcrypto's verification rate here); libcrypto does the rest.
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        // The compiler's prefetch hint, which Swift does not expose: a header only, no library.
        .systemLibrary(name: "CIntrinsics"),
        .target(name: "DatanetCrypto", dependencies: ["CCrypto", "CSodium"]),
        .target(name: "DatanetCBOR"),
        .target(name: "DatanetObjects", dependencies: ["DatanetCrypto", "DatanetCBOR"]),
        .target(name: "DatanetRecords", dependencies: ["DatanetObjects", "DatanetCrypto", "DatanetCBOR"]),
        .target(name: "DatanetStore", dependencies: ["CLMDB", "DatanetObjects", "DatanetCrypto", "DatanetCBOR"],
                swiftSettings: faults),
        .target(name: "DatanetLedger", dependencies: ["DatanetStore", "DatanetRecords", "DatanetObjects", "DatanetCrypto", "DatanetCBOR"]),
        // Peer sync (DESIGN.md "Sync"): Noise transport, protocol, runs of bundles, reconciliation.
        .target(name: "DatanetSync", dependencies: ["DatanetLedger", "DatanetStore", "DatanetRecords", "DatanetObjects", "DatanetCBOR", "DatanetCrypto"]),
        // Model Factory and valuation (DESIGN.md "Attribution and rewards"): no LMDB; the CLI hands it content.
        .target(name: "DatanetAttribution", dependencies: ["CIntrinsics", "DatanetRecords", "DatanetObjects", "DatanetCrypto", "DatanetCBOR"]),
        .executableTarget(name: "datanet", dependencies: ["DatanetAttribution", "DatanetSync", "DatanetLedger", "DatanetStore", "DatanetRecords", "DatanetObjects", "DatanetCrypto"]),
        // Benchmarks live in tools/ (not tests): run by hand, results in BENCHMARKS.md.
        .executableTarget(name: "store-churn", dependencies: ["DatanetStore", "DatanetObjects"], path: "tools/bench/churn"),
        .executableTarget(name: "record-samples", dependencies: ["DatanetTestSupport"], path: "tools/interop/samples"),
        .executableTarget(name: "ledger-bench", dependencies: ["DatanetLedger", "DatanetRecords", "DatanetObjects"], path: "tools/bench/ledgerbench"),
        .executableTarget(name: "provenance-bench", dependencies: ["DatanetLedger", "DatanetRecords", "DatanetObjects"], path: "tools/bench/provenancebench"),
        .executableTarget(name: "noise-peer", dependencies: ["DatanetSync", "DatanetCrypto"], path: "tools/interop/noisepeer"),
        .executableTarget(name: "attribution-bench", dependencies: ["DatanetAttribution"], path: "tools/bench/attributionbench"),
        .executableTarget(name: "negentropy-bench", dependencies: ["DatanetSync", "DatanetStore", "DatanetObjects", "DatanetCrypto"], path: "tools/bench/negentropybench"),
        .executableTarget(name: "cbor-fuzz", dependencies: ["DatanetCBOR", "DatanetTestSupport"], path: "tools/fuzz/cborfuzz"),
        .executableTarget(name: "provenance-fuzz", dependencies: ["DatanetLedger", "DatanetRecords", "DatanetTestSupport"], path: "tools/fuzz/provenancefuzz"),
        .testTarget(name: "DatanetCryptoTests", dependencies: ["DatanetCrypto"],
                    resources: [.copy("Vectors")]),
        .target(name: "DatanetTestSupport", dependencies: ["DatanetLedger", "DatanetRecords", "DatanetObjects"], path: "Tests/DatanetTestSupport"),
        .testTarget(name: "DatanetCBORTests", dependencies: ["DatanetCBOR", "DatanetTestSupport"]),
        .testTarget(name: "DatanetSyncTests", dependencies: ["DatanetSync", "DatanetLedger", "DatanetStore", "DatanetRecords", "DatanetObjects", "DatanetCrypto", "DatanetTestSupport"], resources: [.copy("Vectors")]),
        .testTarget(name: "DatanetAttributionTests", dependencies: ["DatanetAttribution", "DatanetRecords", "DatanetCrypto", "DatanetTestSupport"]),
        .testTarget(name: "DatanetLedgerTests", dependencies: ["DatanetLedger", "DatanetRecords", "DatanetObjects", "DatanetTestSupport"], swiftSettings: faults),
        .testTarget(name: "DatanetStoreTests", dependencies: ["DatanetStore", "DatanetObjects", "DatanetRecords", "DatanetCBOR", "DatanetLedger", "DatanetSync", "datanet", "DatanetTestSupport"],
                    swiftSettings: faults),
    ]
)
