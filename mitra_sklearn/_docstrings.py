"""The numpydoc sections shared by the docstrings of MitraClassifier and MitraRegressor.

`PARAMETERS_DOC` and `ATTRIBUTES_DOC` are templates: each estimator fills in what differs
(its task, its checkpoint, its extra parameters and attributes) with ``str.format``.
"""

__all__ = ["PARAMETERS_DOC", "ATTRIBUTES_DOC"]

PARAMETERS_DOC = """
    Parameters
    ----------
    checkpoint : str, path-like, list of them, or None, default=None
        Weights to use: the name of a checkpoint shipped with the package, a local folder holding
        ``config.json`` and ``model.safetensors``, or a Hugging Face Hub repo id such as
        ``"{official}"``. A list of such checkpoints (all of one task and output head; their
        depths and widths may differ) makes an ensemble of several models: member i runs on
        entry i modulo the list's length, and the members' outputs are averaged as always. A
        checkpoint may also declare partners in its ``config.json`` (``"ensemble_with"``),
        which join the list in the same way. None
        resolves in ``fit`` to the newest official checkpoint that is in the local Hub cache or
        can be downloaded: Mitra v2 ``"{official}"`` (about 76 M parameters), else Mitra v1
        ``"{official_v1}"``, otherwise the {task} checkpoint shipped with the package (0.67 M
        parameters, weaker). Unless the newest is used, a warning once per process says which
        model is used, why, and how to get the newest. An explicit checkpoint never falls back.
        Hub downloads honour ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and ``HF_HOME``; without a network
        they fail within seconds. ``checkpoint_info_`` (``checkpoint_infos_``) records what was
        used.
    n_estimators : int or 'auto', default='auto'
        Ensemble members. Each sees the data through its own {member_view}, its own
        random order of the categories of unordered categorical columns, and a support
        subsample when the training set has more than ``max_support_rows`` rows; their
        {aggregate} are averaged. Wide tables (``max_features``) can need more members:
        ``n_estimators_`` is the number used. 'auto': the checkpoint's own recipe (declared in
        its ``config.json``), else 4 (the official checkpoints: 4).
    device : {{'auto', 'cpu', 'cuda', 'mps'}}, str, torch.device or list of them, default='auto'
        Where the model runs. 'auto' picks CUDA, then MPS, then the CPU. A list (such as
        ``["cuda:0", "cuda:1"]``) spreads the ensemble members over its devices, round-robin
        (member i on entry i modulo its length), runs the members of different accelerators
        at the same time and combines them exactly as on one device. The list is stored as
        given; every entry is checked in ``fit``.
    inference_precision : {{'auto', 'float32', 'bfloat16', 'float16', 'float64'}}, default='auto'
        'auto' is bfloat16 autocast on CUDA and on CPUs with native bf16 (AMX or AVX512-BF16:
        faster there, class probabilities within 0.01 of float32's), float32 elsewhere (bf16 is
        much slower than float32 on CPUs without bf16 hardware). 'float32' gives the official
        implementation's numbers to 1e-6. 'float64' runs a double-precision copy of the model,
        for exact reproducibility checks.
    batch_size : int or 'auto', default='auto'
        Query rows per forward pass. 'auto' sizes the chunks from the memory free on the device
        (40 % of it); out-of-memory errors are retried with smaller chunks in any case.
    max_support_rows : int or 'auto', default='auto'
        Most training rows one forward pass reads; larger training sets are subsampled (see
        ``support_selection``). 'auto': the checkpoint's own limit (``max_support_rows_``):
        8,192 for Mitra v1 and the shipped checkpoints, 32,768 for Mitra v2 (16,384 on binary
        classification), as the reference code of each uses them.
    max_features : int or 'auto', default='auto'
        With more (encoded) features than this, each member reads a random subset of at most
        ``max_features`` columns, and the subsets of the members together cover every feature
        (more members are used when ``n_estimators`` is too small for that). 'auto': the
        checkpoint's own limit (``max_features_``): 500 for Mitra v1 and the shipped
        checkpoints, 256 for Mitra v2.
    support_selection : {{'random', 'nearest'}}, default='random'
        How training sets larger than ``max_support_rows`` are cut down. 'random': each member
        draws its own random subsample (with at least one row of every class). 'nearest':
        retrieval (as in TabDPT / LoCalPFN): at fit time the training rows are clustered (about
        two clusters per ``max_support_rows`` rows) and each cluster centre gets its
        ``max_support_rows`` nearest training rows; every query row reads the support set of
        its nearest centre (one support pass per centre in use and member).
    softmax_temperature : float or 'auto', default='auto'
        Each member's logits are divided by it before the softmax (classes, or the bins of a
        binned regression head; no effect on a scalar regression head): below 1 sharpens the
        probabilities, above 1 flattens them. 'auto': the checkpoint's own
        (``softmax_temperature_``): 1 for the official checkpoints (their code's plain
        softmax), the value a shipped checkpoint declares (tuned on real data), else 1.
    support_cache : {{'predict', 'fit', 'off'}}, default='predict'
        'predict': the support rows run once per member and predict call, layer by layer
        together with every chunk of query rows (one layer's keys/values in memory at a time).
        'fit': every layer's keys/values of each member's support set are computed in ``fit``
        and kept for all later calls (fastest for many small predict calls; not pickled).
        'off': re-run the support rows with every chunk (the official implementation's
        behaviour; least memory when predicting very many rows, slowest).
    categorical_features : 'auto', array-like of int, str or bool, default='auto'
        Categorical columns besides those detected automatically (pandas ``category`` columns
        and columns holding strings): indices, names or a boolean mask.
    fine_tune : bool or 'mitra-v2', default=False
        Fine-tune the pretrained weights on the training set in ``fit`` (episodic tasks, AdamW,
        best weights on an internal 20 % validation split are kept). True: ``fine_tune_steps``
        steps at ``fine_tune_lr`` (10 warm-up steps, weight decay 0.3 on the weight matrices,
        gradients clipped at 1). 'mitra-v2': the Mitra-v2 authors' recipe, whatever
        ``fine_tune_steps`` and ``fine_tune_lr`` say: 50 steps at 1e-5 (3e-6 on binary tables
        of at most 16,384 rows), 10 warm-up steps ending at 0.91 of the rate, weight decay 0.3
        on every parameter, no clipping, tasks of at most 16,384 (classification) or 20,480
        (regression) support rows. Their 8-fold bagging of separately tuned models is not
        reproduced: one tuned copy serves all members.
    fine_tune_steps : int, default=50
        Optimizer steps of fine-tuning (``fine_tune=True``).
    fine_tune_lr : float, default=1e-5
        Peak learning rate of fine-tuning (``fine_tune=True``; 10 warm-up steps).
    n_jobs : int or None, default=None
        CPU threads torch uses during ``fit`` and ``predict`` (set for the call and restored
        after; process-wide). None keeps torch's setting (all cores, or the share joblib gives
        a worker process), capped to the CPUs this process may use (affinity mask and
        container CPU quota, so it never oversubscribes them). -1 is every available CPU.
        Inside ``GridSearchCV`` / ``cross_val_score``, prefer the search's ``n_jobs=1``: each
        fit and predict already uses every core, and parallel workers each get a share of
        the cores and load the model themselves.
    random_state : int, RandomState instance or None, default=None
        Drives every random choice: member views (feature order and signs, class
        permutations, category orders of unordered categorical columns), subsamples,
        weighted support draws and fine-tuning tasks.
    verbose : bool or int, default=False
        Report the steps of ``fit`` (checkpoint, encoding, ensemble size, model loading, with
        timings) and show progress bars for fine-tuning and prediction (rows of the call, with
        the time left).
"""

ATTRIBUTES_DOC = """
    Attributes
    ----------
{extra}    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Column names seen during ``fit`` (only for inputs with string column names).
    encoder_ : TabularEncoder
        Fitted preprocessing (categorical codes, imputation, dropped constant columns).
    X_support_ : ndarray of shape (n_samples, n_encoded_features)
        The encoded training table, used as in-context support set.
    y_support_ : ndarray of shape (n_samples,)
        The encoded targets.
    members_ : list of EnsembleMember
        The view of each ensemble member.
    max_support_rows_ : int
        The support-row limit in use (``max_support_rows``, or the checkpoint's for 'auto').
    max_features_ : int
        The feature limit in use (``max_features``, or the checkpoint's for 'auto').
    softmax_temperature_ : float
        The temperature in use (``softmax_temperature``, or the checkpoint's for 'auto').
    n_estimators_ : int
        Number of ensemble members used: ``n_estimators``, or more when feature subsets
        (``max_features``) or class groups need more (a warning says so for feature subsets).
    local_support_ : LocalSupportIndex or None
        With ``support_selection='nearest'`` and more than ``max_support_rows`` training rows:
        the cluster centres and each centre's support rows; otherwise None.
    checkpoint_ : str
        Resolved checkpoint reference (shipped name, absolute folder or repo id); with several
        checkpoints, the first.
    checkpoint_info_ : CheckpointInfo
        What exactly was used and why: source, Hub commit (``revision``), SHA-256 of the
        weights, number of parameters, and the reason (the argument, or the default rule's).
        Unpickled estimators reload exactly these weights, or raise
        ``CheckpointNotFoundError`` when they are not available. With several checkpoints, the
        first's.
    checkpoint_infos_ : tuple of CheckpointInfo
        The same for every checkpoint the members come from (one entry unless ``checkpoint``
        is a list or declares ``ensemble_with`` partners); member i runs on entry i modulo its
        length.
    config_ : MitraConfig
        Shape of the checkpoint's model (with several checkpoints, the first's).
    configs_ : tuple of MitraConfig
        The shape of every checkpoint in ``checkpoint_infos_``, in the same order.
    device_ : torch.device
        Device used for prediction (with a device list: its first device, also used for
        fine-tuning).
    devices_ : list of torch.device
        The devices the ensemble members go to, round-robin (one entry without a list).
    fine_tuned_weights_ : dict of str to Tensor or None
        Fine-tuned weights (CPU), or None when ``fine_tune=False`` or the pretrained weights
        stayed best on the validation split.
    fine_tune_losses_ : ndarray or None
        Validation loss before fine-tuning and after each step.
"""
