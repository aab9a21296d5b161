# Baseline for fedrx_trial_bench: BOIN and CRM dose-escalation trials
# simulated in base R with the same design rules as services/trial (BOIN as
# the BOIN package's get.oc / select.mtd; CRM with the empiric model on the
# same Gauss-Legendre grid, overdose control on escalation, no skipping,
# safety stop), timed inside R with proc.time().
#
# (n.earlystop and extrasafe are left at their package defaults, which do not
# act in this 30-patient scenario.)
#
# Usage: Rscript trial_baseline.R [--trials N] [--seed S] [--designs boin,crm]
# Prints one line per design:
#   design=boin trials=N elapsed_s=T cpu_s=C trials_per_s=R selection=s1,...,s5 stop=P patients=M
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  i <- match(paste0("--", name), args)
  if (is.na(i) || i == length(args)) default else args[i + 1]
}
ntrial <- as.integer(opt("trials", "1000"))
seed <- as.integer(opt("seed", "1"))
designs <- strsplit(opt("designs", "boin,crm"), ",")[[1]]

target <- 0.3
p.true <- c(0.05, 0.15, 0.30, 0.45, 0.60)
cohortsize <- 3
npts <- 30
ndose <- length(p.true)

# ---- BOIN -------------------------------------------------------------------
boin.setup <- function(target, npts, cutoff = 0.95) {
  phi1 <- 0.6 * target
  phi2 <- 1.4 * target
  le <- log((1 - phi1) / (1 - target)) / log(target * (1 - phi1) / (phi1 * (1 - target)))
  ld <- log((1 - target) / (1 - phi2)) / log(phi2 * (1 - target) / (target * (1 - phi2)))
  n <- seq_len(npts)
  esc <- floor(le * n)
  dei <- ceiling(ld * n)
  eli <- rep(NA_integer_, npts)
  for (m in 3:npts) {
    tail <- 1 - pbeta(target, (1:m) + 1, m - (1:m) + 1)
    hit <- which(tail > cutoff)
    if (length(hit)) eli[m] <- hit[1]
  }
  dei <- ifelse(!is.na(eli) & dei > eli, eli, dei)
  list(esc = esc, dei = dei, eli = eli, cutoff = cutoff)
}

iso.fit <- function(x, w) {
  # pool adjacent violators with a stack of blocks
  k <- 0
  val <- numeric(length(x)); wt <- numeric(length(x)); cnt <- integer(length(x))
  for (i in seq_along(x)) {
    k <- k + 1; val[k] <- x[i]; wt[k] <- w[i]; cnt[k] <- 1L
    while (k > 1 && val[k - 1] > val[k]) {
      tot <- wt[k - 1] + wt[k]
      val[k - 1] <- (val[k - 1] * wt[k - 1] + val[k] * wt[k]) / tot
      wt[k - 1] <- tot; cnt[k - 1] <- cnt[k - 1] + cnt[k]
      k <- k - 1
    }
  }
  rep(val[1:k], cnt[1:k])
}

boin.mtd <- function(n, y, target, cutoff) {
  elim <- rep(FALSE, length(n))
  for (i in seq_along(n)) {
    if (n[i] >= 3 && 1 - pbeta(target, y[i] + 1, n[i] - y[i] + 1) > cutoff) {
      elim[i:length(n)] <- TRUE
      break
    }
  }
  ok <- n > 0 & !elim
  if (elim[1] || !any(ok)) return(0L)
  idx <- which(ok)
  yy <- y[ok]; nn <- n[ok]
  ph <- (yy + 0.05) / (nn + 0.1)
  v <- (yy + 0.05) * (nn - yy + 0.05) / ((nn + 0.1)^2 * (nn + 0.1 + 1))
  fit <- iso.fit(ph, 1 / v) + seq_along(ph) * 1e-10
  idx[which.min(abs(fit - target))]
}

boin.trial <- function(b, p.true) {
  n <- integer(ndose); y <- integer(ndose); elim <- rep(FALSE, ndose)
  d <- 1L
  for (c in seq_len(npts / cohortsize)) {
    y[d] <- y[d] + sum(runif(cohortsize) < p.true[d])
    n[d] <- n[d] + cohortsize
    if (sum(n) >= npts) break
    m <- n[d]
    if (!is.na(b$eli[m]) && y[d] >= b$eli[m]) {
      elim[d:ndose] <- TRUE
      if (d == 1) return(list(n = n, y = y, mtd = 0L))
    }
    if (y[d] <= b$esc[m] && d != ndose) {
      if (!elim[d + 1]) d <- d + 1L
    } else if (y[d] >= b$dei[m] && d != 1) {
      d <- d - 1L
    }
  }
  list(n = n, y = y, mtd = boin.mtd(n, y, target, b$cutoff))
}

# ---- CRM --------------------------------------------------------------------
getprior.empiric <- function(hw, target, nu, nlevel) {
  s <- numeric(nlevel); s[nu] <- target
  if (nu > 1) for (k in nu:2) s[k - 1] <- exp(log(target - hw) * log(s[k]) / log(target + hw))
  if (nu < nlevel) for (k in nu:(nlevel - 1)) s[k + 1] <- exp(log(target + hw) * log(s[k]) / log(target - hw))
  s
}

crm.setup <- function(skel, sd, target, npts) {
  glx <- c(0.1834346424956498, 0.5255324099163290, 0.7966664774136267, 0.9602898564975363)
  glw <- c(0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763)
  x8 <- c(-rev(glx), glx); w8 <- c(rev(glw), glw)
  L <- 10 * sd
  h <- min(sd, 1.5 / sqrt(0.65 * npts + 1 / sd^2))
  cuts <- log(log(target) / log(skel))
  br <- sort(unique(c(-L, L, cuts[cuts > -L & cuts < L])))
  a <- numeric(0); lw <- numeric(0)
  for (b in seq_len(length(br) - 1)) {
    u <- br[b]; v <- br[b + 1]
    k <- max(1, ceiling((v - u) / h)); width <- (v - u) / k
    mids <- u + (seq_len(k) - 0.5) * width
    a <- c(a, as.vector(outer(x8 * width / 2, mids, "+")))
    lw <- c(lw, rep(log(w8 * width / 2), k))
  }
  lw <- lw - a^2 / (2 * sd^2)
  lp <- outer(exp(a), log(skel))          # nodes x doses: log p
  list(a = a, lw = lw, lp = lp, l1p = log(-expm1(lp)), p = exp(lp),
       below = sapply(cuts, function(c) sum(a < c)))
}

crm.post <- function(g, n, y) {
  l <- g$lw + g$lp %*% y + g$l1p %*% (n - y)
  w <- exp(l - max(l)); z <- sum(w)
  mean <- as.vector(crossprod(g$p, w)) / z
  cw <- cumsum(w)
  above <- ifelse(g$below > 0, cw[pmax(g$below, 1)], 0) / z
  list(mean = mean, above = above)
}

crm.trial <- function(g, p.true, target, odp) {
  n <- integer(ndose); y <- integer(ndose)
  d <- 1L; highest <- 1L
  nc <- npts / cohortsize
  for (c in seq_len(nc)) {
    y[d] <- y[d] + sum(runif(cohortsize) < p.true[d])
    n[d] <- n[d] + cohortsize
    s <- crm.post(g, n, y)
    if (n[1] >= 3 && s$above[1] > 0.9) return(list(n = n, y = y, mtd = 0L))
    if (c == nc) break
    rec <- min(which.min(abs(s$mean - target)), highest + 1L, ndose)
    if (rec > d) {
      nxt <- d
      while (nxt < rec && s$above[nxt + 1] <= odp) nxt <- nxt + 1L
      d <- nxt
    } else {
      d <- rec
    }
    highest <- max(highest, d)
  }
  mtd <- min(which.min(abs(s$mean - target)), highest)
  while (mtd > 1 && n[mtd] == 0) mtd <- mtd - 1L
  list(n = n, y = y, mtd = mtd)
}

# ---- run --------------------------------------------------------------------
report <- function(name, run) {
  set.seed(seed)
  sel <- integer(ndose + 1); pts <- 0
  t0 <- proc.time()
  for (i in seq_len(ntrial)) {
    r <- run()
    sel[r$mtd + 1] <- sel[r$mtd + 1] + 1L
    pts <- pts + sum(r$n)
  }
  t <- proc.time() - t0
  cat(sprintf("design=%s trials=%d elapsed_s=%.4f cpu_s=%.4f trials_per_s=%.4f selection=%s stop=%.4f patients=%.4f\n",
              name, ntrial, t[["elapsed"]], t[["user.self"]] + t[["sys.self"]],
              ntrial / t[["elapsed"]],
              paste(sprintf("%.4f", 100 * sel[-1] / ntrial), collapse = ","),
              100 * sel[1] / ntrial, pts / ntrial))
}

if ("boin" %in% designs) {
  b <- boin.setup(target, npts)
  report("boin", function() boin.trial(b, p.true))
}
if ("crm" %in% designs) {
  g <- crm.setup(getprior.empiric(0.05, target, ceiling(ndose / 2), ndose), 1.16, target, npts)
  report("crm", function() crm.trial(g, p.true, target, 0.25))
}
