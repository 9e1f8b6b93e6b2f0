// The index: what the routes are. Also what `run.sh` and `leak-client watch --ready` poll.
export default function Home() {
  return (
    <main>
      <h1>leakprobe next-app</h1>
      <ul>
        <li><a href="/api/start-fetch?n=100">/api/start-fetch?n=100</a>: n requests through Next&apos;s fetch</li>
        <li><a href="/api/start-custom-fetch?n=100">/api/start-custom-fetch?n=100</a>: n requests through node:http</li>
      </ul>
    </main>
  );
}
