// What a reader sees (issue 21): everything fits the column.
// - Display equations: long ones are broken onto lines in the source
//   (aligned); one that is still wider than the column on a narrow screen is
//   scaled down to fit, to no less than MIN_SCALE of its size.
// - Tables: names in code (objectives.categorical_kl) may break after a dot or
//   an underscore, so that a table's columns can narrow to a phone's width; a
//   table still wider than the column scrolls in a box with wrap.css's hint.
(() => {
  const MIN_SCALE = 0.6;

  function roomFor(container) {
    // The column minus the equation number beside it.
    const block = container.closest("div.math") || container.parentElement;
    const eqno = block.querySelector(":scope > .eqno");
    return block.clientWidth - (eqno ? eqno.getBoundingClientRect().width + 8 : 0);
  }

  function fitMath() {
    for (const container of document.querySelectorAll('mjx-container[display="true"]')) {
      container.style.fontSize = "";
      delete container.dataset.scale;
      const math = container.querySelector("mjx-math");
      if (!math) continue;
      const need = math.getBoundingClientRect().width;
      const room = roomFor(container);
      if (need > room) {
        const scale = Math.max(MIN_SCALE, room / need);
        container.style.fontSize = `${Math.floor(scale * 1000) / 10}%`;
        container.dataset.scale = scale.toFixed(2);
      }
    }
  }

  function breakableNames(table) {
    for (const code of table.querySelectorAll("code")) {
      for (const node of [...code.childNodes]) {
        if (node.nodeType !== Node.TEXT_NODE || !/[._]/.test(node.textContent)) continue;
        const parts = node.textContent.split(/(?<=[._])/);
        node.replaceWith(...parts.flatMap((part) => [part, document.createElement("wbr")]));
      }
    }
  }

  function wrapTables() {
    for (const table of document.querySelectorAll("article table")) {
      breakableNames(table);
      if (table.closest(".pst-scrollable-table-container, .table-scroll")) continue;
      const box = document.createElement("div");
      box.className = "table-scroll";
      table.replaceWith(box);
      box.appendChild(table);
    }
  }

  window.addEventListener("load", () => {
    wrapTables();
    const typeset = window.MathJax?.startup?.promise ?? Promise.resolve();
    typeset.then(() => {
      fitMath();
      document.documentElement.dataset.mathFitted = "1";
    });
  });
  window.addEventListener("resize", () => fitMath());
})();
