package ui_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clawbox/clawbox/internal/server"
)

// parserChecks runs in the page, on the page's own modules: the stream parsers fed
// one byte at a time with hostile content, the metrics parser, and the DOM builder's
// refusals. It returns the failures.
const parserChecks = `(async () => {
  const api = await import('./js/api.js');
  const metrics = await import('./js/metrics.js');
  const dom = await import('./js/dom.js');
  const fails = [];
  const eq = (what, got, want) => { if (JSON.stringify(got) !== JSON.stringify(want)) fails.push(what + ': got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want)); };
  const byteStream = (text) => {
    const bytes = new TextEncoder().encode(text);
    let i = 0;
    return new Response(new ReadableStream({ pull(c) { if (i < bytes.length) c.enqueue(bytes.slice(i, ++i)); else c.close(); } }));
  };

  // Server-Sent Events: data lines (with and without the space, CRLF or LF),
  // comments, other fields, multi-line data, non-JSON and non-object events skipped,
  // multi-byte UTF-8 split across chunks.
  const events = [];
  await api.sse(byteStream('data: {"n":1}\n\n: keepalive\n\nevent: x\ndata:{"n":2,"s":"\u00e9\u20ac\ud83d\ude00"}\r\n\r\ndata: not json\n\ndata: [1,2]\n\ndata: {"n":\ndata: 3}\n\n'), (v) => events.push(v));
  eq('sse', events, [{ n: 1 }, { n: 2, s: '\u00e9\u20ac\ud83d\ude00' }, { n: 3 }]);

  // NDJSON: blank and broken lines skipped, the last line without a newline kept.
  const frames = [];
  await api.ndjson(byteStream('{"stream":"stdout","data":"<script>x</script>"}\n\nnot json\n[1]\nnull\n{"stream":"status","status":"killed"}'), (v) => frames.push(v));
  eq('ndjson', frames, [{ stream: 'stdout', data: '<script>x</script>' }, { stream: 'status', status: 'killed' }]);

  // Prometheus text: labels with escapes, histograms, quantiles.
  const samples = metrics.parse([
    '# HELP x y', '# TYPE clawbox_gateway_requests_total counter',
    'clawbox_gateway_requests_total{caller="container",decision="allowed"} 3',
    'clawbox_gateway_requests_total{caller="tool",decision="allowed"} 2',
    'clawbox_gateway_requests_total{caller="container",decision="blocked"} 4',
    'clawbox_pool_claims_total{pool="a \\"b\\"",result="hit"} 5',
    'spawn_bucket{le="0.1"} 1', 'spawn_bucket{le="0.2"} 3', 'spawn_bucket{le="+Inf"} 4', 'spawn_sum 0.9', 'spawn_count 4',
    'garbage line {', 'nan_metric NaN',
  ].join('\n'));
  eq('decisions', [...metrics.byLabel(samples, 'clawbox_gateway_requests_total', 'decision')], [['allowed', 5], ['blocked', 4]]);
  eq('escaped label', samples.find((x) => x.name === 'clawbox_pool_claims_total').labels.pool, 'a "b"');
  const hist = metrics.histogram(samples, 'spawn');
  eq('histogram count', hist.count, 4);
  eq('p50', Math.round(metrics.quantile(hist, 0.5) * 1000), 150);
  eq('p100 in +Inf', metrics.quantile(hist, 1), 0.2);
  eq('no histogram', metrics.histogram(samples, 'nope'), null);

  // The DOM builder: text stays text; handlers as strings and style are refused.
  const el = dom.h('div', { class: 'x', title: '"><img src=x onerror=alert(1)>' }, '<img src=x onerror=alert(1)>', ['<b>', null, false, 7]);
  eq('text nodes only', [el.children.length, el.textContent], [0, '<img src=x onerror=alert(1)><b>7']);
  for (const bad of [{ onclick: 'alert(1)' }, { style: 'color:red' }]) {
    try { dom.h('a', bad); fails.push('accepted ' + JSON.stringify(bad)); } catch (e) { /* refused */ }
  }
  return fails;
})()`

// TestDashboardModulesInBrowser checks the page's parsers and DOM builder in
// Chromium, on a server without Docker: the code that reads what sandboxes send.
func TestDashboardModulesInBrowser(t *testing.T) {
	chrome := chromium(t)
	s, err := server.New(server.Config{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.DisableGPU, chromedp.UserDataDir(profileDir(t)))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-token"))); err != nil {
		t.Fatal(err)
	}
	fails, err := chromedp.Run(bctx, chromedp.Evaluate[json.RawMessage](parserChecks, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	if err := json.Unmarshal(fails, &list); err != nil {
		t.Fatalf("checks returned %s", fails)
	}
	if len(list) == 0 && string(fails) != "[]" {
		t.Fatalf("checks returned %s", fails)
	}
	for _, f := range list {
		t.Error(f)
	}
}
