# Computes the reference values of `reference.rs` (run once; the Rust tests never call Python):
#   pip install scipy statsmodels && python3 reference.py
# then paste each section into the matching constant of `reference.rs`.
import numpy as np
from scipy import special, stats, integrate
from statsmodels.stats.proportion import proportions_ztest, test_proportions_2indep
print("// erf, erfc, erfcx")
for x in [-3.0, -0.5, 0.0, 1e-3, 0.3, 1.0, 2.0, 2.49, 2.5, 3.0, 5.0, 10.0, 26.0]:
    print(f"({x!r}, {special.erf(x)!r}, {special.erfc(x)!r}, {special.erfcx(x)!r}),")
print("// normal cdf, sf, log_cdf")
for x in [-40.0, -10.0, -5.5, -3.0, -1.0, 0.0, 0.5, 1.96, 3.0, 8.0, 38.0]:
    print(f"({x!r}, {stats.norm.cdf(x)!r}, {stats.norm.sf(x)!r}, {stats.norm.logcdf(x)!r}),")
print("// ppf")
for p in [1e-300, 1e-20, 1e-10, 1e-5, 0.001, 0.01, 0.02425, 0.05, 0.3, 0.5, 0.7, 0.975, 0.99, 0.999999]:
    print(f"({p!r}, {stats.norm.ppf(p)!r}),")
print("// mann-whitney greater asymptotic continuity: x, y, U, p")
rng = np.random.default_rng(7)
cases = [
  ([1,2,3,4,5,6,7,8,9,10],[3,3,4,5,5,5,6,11,12]),
  ([1.5,2.5,2.5,2.5,7,9],[1,2,2.5,3,3,4,4,4,5,6]),
  (list(rng.integers(0,8,40)), list(rng.integers(0,6,55))),
  (list(rng.integers(0,20,25)), list(rng.integers(3,25,30))),
]
for x,y in cases:
    r = stats.mannwhitneyu(x, y, alternative='greater', method='asymptotic', use_continuity=True)
    r2 = stats.mannwhitneyu(x, y, alternative='greater', method='asymptotic', use_continuity=False)
    print(f"(&{[float(v) for v in x]}, &{[float(v) for v in y]}, {float(r.statistic)!r}, {float(r.pvalue)!r}, {float(r2.pvalue)!r}),")
print("// two proportions: x1,n1,x2,n2,delta,z,p")
for (x1,n1,x2,n2,d) in [(15,200,5,300,0.0),(3,1000,2,900,0.0),(50,400,20,400,0.0),(30,500,10,2000,0.01),(12,300,6,1000,0.02),(2,100,5,120,0.01)]:
    if d == 0.0:
        z,p = proportions_ztest([x1,x2],[n1,n2],alternative='larger')
    else:
        r = test_proportions_2indep(x1,n1,x2,n2,value=d,method='wald',compare='diff',alternative='larger')
        z,p = r.statistic, r.pvalue
    print(f"({x1}, {n1}, {x2}, {n2}, {d!r}, {float(z)!r}, {float(p)!r}),")
print("// bernoulli mixture: p0, x, n, lnM")
def mix(p0,x,n):
    ks=[1.5,2,3,5,10]
    ps=[min(k*p0, 1-(1-p0)/k) for k in ks]
    terms=[stats.binom.logpmf(x,n,p1)-stats.binom.logpmf(x,n,p0) for p1 in ps]
    return float(special.logsumexp(terms) - np.log(len(ks)))
for (p0,x,n) in [(0.01,0,100),(0.01,5,100),(0.01,13,250),(0.01,1,500),(0.05,30,200),(0.3,50,100),(0.001,4,300),(0.5,90,100)]:
    print(f"({p0!r}, {x}, {n}, {mix(p0,x,n)!r}),")
print("// normal mixture one-sided: d, v, tau, lnLambda (quad)")
def nm(d,v,tau):
    f=lambda u: 2/tau*stats.norm.pdf(u/tau)*np.exp(u*d/v - u*u/(2*v))
    val,err=integrate.quad(f,0,np.inf,limit=500, epsabs=0, epsrel=1e-12)
    return float(np.log(val))
for (d,v,tau) in [(0.02,1e-4,0.03),(0.0,1e-4,0.03),(-0.01,1e-4,0.03),(0.05,4.75e-4,0.05),(0.1,1e-3,0.1),(-0.2,1e-3,0.1),(0.001,1e-6,0.1)]:
    print(f"({d!r}, {v!r}, {tau!r}, {nm(d,v,tau)!r}),")
