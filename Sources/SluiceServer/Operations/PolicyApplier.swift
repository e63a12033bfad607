import Logging
import NIOCore
import SluiceBackends
import SluiceDomain

/// Puts the breaker and namespace policies of a ``PolicySet`` into force through the
/// capabilities (as `CB.CONFIG` and `SEM.CONFIG` would), at start-up and on each reload.
struct PolicyApplier: Sendable {
    let breakers: any Breakers
    let semantic: any SemanticStore
    let clock: any TimeSource

    func apply(_ policies: PolicySet, on eventLoop: any EventLoop, logger: Logger) async {
        for (name, change) in policies.breakers.sorted(by: { $0.key < $1.key }) {
            let result = try? await breakers.configure(name, change, now: clock.timestamp().monotonic, on: eventLoop).future(on: eventLoop).get()
            if case .failure(let error) = result {
                logger.warning("breaker policy not applied", metadata: ["breaker": "\(name)", "error": "\(error)"])
            }
        }
        for (name, ns) in policies.namespaces.sorted(by: { $0.key < $1.key }) {
            let result = try? await semantic.configure(namespace: name, minScore: ns.minScore, maxEntries: ns.maxEntries, on: eventLoop)
                .future(on: eventLoop).get()
            if case .failure(let error) = result {
                logger.warning("namespace policy not applied", metadata: ["namespace": "\(name)", "error": "\(error)"])
            }
        }
    }
}
