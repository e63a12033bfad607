import ServiceLifecycle

/// Samples the dashboard's figures once a second (``DashboardFeed/sample()``) until shutdown.
public struct DashboardService: Service {
    let feed: DashboardFeed

    public init(feed: DashboardFeed) {
        self.feed = feed
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                await feed.sample()
            }
        }
    }
}
