"""utilabel: utility-focused LLM annotation of retrieval training data.

Stages live in sub-packages: ``data`` (datasets, readers/writers), ``llm`` (LLM backends),
``annotate`` (relevance / utility labelling), ``train`` (dense retriever training and losses),
``retrieve`` (BM25 and dense retrieval), ``evaluate`` (retrieval and RAG metrics),
``experiments`` (grids and reports) and ``cli`` (the thin ``utilabel`` command).
Record types shared by every stage are in :mod:`utilabel.records`.
"""

__version__ = "0.1.0"
