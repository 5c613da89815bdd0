// The job page of `panel view`, live: follows /jobs/{id}/events and updates the page by
// textContent only (every result line is data, never markup). Without JavaScript the page
// refreshes itself while the job runs.
"use strict";

(function () {
  const main = document.getElementById("job");
  if (!main || main.dataset.state !== "running" || !window.EventSource) {
    return;
  }
  const $ = (id) => document.getElementById(id);
  const usd = (v) => (!v ? "$0" : v < 0.01 ? "$" + v.toFixed(4) : "$" + v.toFixed(2));

  function counts(data) {
    const bar = $("job-progress");
    bar.max = data.total > 0 ? data.total : 1;
    bar.value = data.done;
    bar.textContent = data.done + " of " + data.total;
    $("job-done").textContent = String(data.done);
    $("job-total").textContent = String(data.total);
    $("job-valid").textContent = String(data.valid);
    $("job-failed").textContent = String(data.failed);
    $("job-spent").textContent = usd(data.spent_usd);
  }

  function link(end, data) {
    const a = document.createElement("a");
    a.id = "job-run";
    a.href = main.dataset.base + "/runs/" + encodeURIComponent(data.run_id);
    a.textContent = "run " + data.run_id;
    end.appendChild(a);
  }

  const source = new EventSource(main.dataset.events);
  source.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    counts(data);
    const item = document.createElement("li");
    item.textContent = data.last;
    $("job-results").appendChild(item);
  });
  source.addEventListener("done", (event) => {
    source.close();
    const data = JSON.parse(event.data);
    counts(data);
    main.dataset.state = data.state;
    const state = $("job-state");
    state.textContent = data.state;
    state.className = "status status-" + data.state;
    const end = $("job-end");
    end.textContent = "";
    if (data.state === "done") {
      end.appendChild(document.createTextNode("Done: "));
    } else {
      const error = document.createElement("span");
      error.className = "job-error";
      error.textContent = "Failed: " + data.error;
      end.appendChild(error);
      if (data.run_id) {
        end.appendChild(document.createTextNode(" · "));
      }
    }
    if (data.run_id) {
      link(end, data);
    }
  });
})();
