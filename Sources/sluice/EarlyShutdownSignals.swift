import Dispatch
import Foundation
import ServiceLifecycle
import Synchronization

/// SIGTERM and SIGINT caught from the very start of `serve`, and handed to the service group.
///
/// The node listens before the service group runs and installs its own signal handlers; a
/// SIGTERM in between took the default action and killed the process with its writes still
/// queued (seen in CI: a restart test stopping a node it had just started). A signal caught
/// here before the group exists is remembered and turned into the group's graceful shutdown.
final class EarlyShutdownSignals: Sendable {
    let state = Mutex<(received: Bool, group: ServiceGroup?)>((false, nil))
    // Kept alive for the life of the process; only touched in init.
    nonisolated(unsafe) var sources: [any DispatchSourceSignal] = []

    init(_ signals: [Int32] = [SIGTERM, SIGINT]) {
        for number in signals {
            signal(number, SIG_IGN)  // the dispatch source sees it instead of the default action
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.received() }
            source.resume()
            sources.append(source)
        }
    }

    func received() {
        let group = state.withLock { s -> ServiceGroup? in
            s.received = true
            return s.group
        }
        if let group { Task { await group.triggerGracefulShutdown() } }
    }

    /// From now on (and for a signal already caught) the group shuts down gracefully.
    func forward(to group: ServiceGroup) {
        let already = state.withLock { s -> Bool in
            s.group = group
            return s.received
        }
        if already { Task { await group.triggerGracefulShutdown() } }
    }
}
