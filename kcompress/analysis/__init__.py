"""Analysis of saved runs, in bits (the report needs numpy/scipy/matplotlib, not jax).

  load.py       a workdir's files -> plain structures (`load_run`)
  summary.py    the headline numbers of a run (summary.json)
  figures.py    the report's PNG figures
  readings.py   the report's generated text
  report.py     `write_report(workdir)`: the above into WORKDIR/report/
  claims.py     the paper's claims of a run (`run_claims`) and their markdown table;
                claims_rule.py (verdict rule, intervals), claims_stream.py (1-2),
                claims_curves.py (3, loss-curve inputs), claims_exponents.py (6-8),
                claims_probes.py (4-5, 9-11)
  compare.py    several runs side by side (exponents vs alpha)
  fits.py, ksf.py, oracle.py   power-law fits, structure functions, the oracle (jax)
"""
