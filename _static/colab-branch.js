// The Colab button opens the chapter as tools/colab_notebooks.py converts it:
// plain Jupyter markdown, numbers in the sentences. The book's workflow
// publishes those notebooks to the "colab" branch; the theme builds every
// launch link from the repository's main branch, so only the Colab link is
// pointed at that branch here ("edit" and "repository" stay on main).
window.addEventListener("DOMContentLoaded", () => {
  for (const link of document.querySelectorAll('a[href*="colab.research.google.com"]')) {
    link.href = link.href.replace(/\/blob\/[^/]+\//, "/blob/colab/");
  }
});
