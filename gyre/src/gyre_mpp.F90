!> @file gyre_mpp.F90
!> @brief 2-D MPI domain decomposition of the closed basin, halo exchange, gathers and reductions, error stops.
!>
!> The global interior grid (nn_nx, nn_ny) is split into jpni x jpnj boxes, unevenly when needed (the first
!> mod(nn_nx,jpni) columns of ranks get one more point). Local arrays carry nn_hls halo points on each side;
!> outside the basin the halo is land and is never written. Rank r owns the tile (mod(r,jpni), r/jpni).
!>
!> With ln_landdom (&namdom), as NEMO's mpp_init/mpp_is_ocean, the tiles whose interior holds no ocean point
!> are removed: the job runs on as many ranks as there are tiles with ocean, rank r owning the r-th of them
!> (tile index i fastest). A removed neighbour is MPI_PROC_NULL, so the halo facing it keeps its land value (0,
!> as the state is masked on land and every exchange sends interior points only), which is exactly what the
!> removed tile would have sent. A halo corner comes, in the full layout, from the north or south neighbour's
!> east-west halo; when that neighbour is removed the corner is taken directly from the diagonal tile. Gathers
!> fill removed tiles with 0 (land). The answer is bit-identical to the run that keeps every tile.
module gyre_mpp
   use mpi
   use gyre_par
   implicit none
   private

   public :: mpp_init, mpp_decomp, mpp_dims, lbc_lnk, lbc_lnk_2d, mpp_gather, mpp_max, mpp_sum_int
   public :: ctl_stop, ctl_warn, mpp_barrier

   integer, public :: mpi_comm_oce = MPI_COMM_NULL  !< the model's communicator (from the bridge or MPI_COMM_WORLD)
   integer, public :: nrank = 0                 !< rank in mpi_comm_oce
   integer, public :: nsize = 1                 !< number of ranks in mpi_comm_oce
   logical, public :: lwp = .true.              !< .true. on the printing rank (rank 0)
   integer, public :: ni = 0, nj = 0            !< interior extent of this rank's tile
   integer, public :: nimpp = 0, njmpp = 0      !< 0-based global offset of the tile's first interior point
   integer, public :: ipi = 0, ipj = 0          !< tile coordinates of this rank (0-based)
   integer, allocatable, public :: nimppt(:), njmppt(:), nit(:), njt(:)  !< offsets and extents of every rank (0-based rank index)
   integer, allocatable, public :: nranktile(:,:)  !< rank of tile (i,j) (0-based, 0:jpni-1 x 0:jpnj-1), -1 if removed
   integer, public :: nremoved = 0              !< number of land-only tiles removed (ln_landdom)

   !> hook called by ctl_stop instead of MPI_Finalize/MPI_Abort (set by gyre_cpl when the bridge is active)
   procedure(abort_iface), pointer, public :: abort_hook => null()
   abstract interface
      subroutine abort_iface(cd_msg)
         character(len=*), intent(in) :: cd_msg   !< message to print before aborting the whole job
      end subroutine abort_iface
   end interface

   integer :: nowe = MPI_PROC_NULL, noea = MPI_PROC_NULL, noso = MPI_PROC_NULL, nono = MPI_PROC_NULL  ! neighbours
   real(wp), allocatable :: sbufw(:), sbufe(:), rbufw(:), rbufe(:), sbufs(:), sbufn(:), rbufs(:), rbufn(:)
   integer :: nlbc_cap = 0                      ! capacity (fields) of the halo buffers
   ! halo corners exchanged directly with a diagonal tile (only where a removed tile sits between them):
   ! corner k = 1 SW, 2 SE, 3 NW, 4 NE; idgs(k): rank to send my corner k to, idgr(k): rank to receive it from
   integer, parameter :: jpdx(4) = [-1, 1, -1, 1], jpdy(4) = [-1, -1, 1, 1]
   integer :: idgs(4) = MPI_PROC_NULL, idgr(4) = MPI_PROC_NULL
   logical :: lldiag = .false.                  ! some corner is exchanged directly
   real(wp), allocatable :: cbufs(:,:), cbufr(:,:)

contains

   !> Set the communicator (the decomposition comes after the global mask: mpp_decomp).
   subroutine mpp_init(kcomm)
      integer, intent(in) :: kcomm              !< the model's communicator
      integer :: ierr
      mpi_comm_oce = kcomm
      call MPI_Comm_rank(kcomm, nrank, ierr)
      call MPI_Comm_size(kcomm, nsize, ierr)
      lwp = (nrank == 0)
   end subroutine mpp_init

   !> Choose jpni x jpnj, remove the land-only tiles (ln_landdom) and compute every rank's tile and neighbours.
   subroutine mpp_decomp(pmask_glo)
      real(wp), intent(in) :: pmask_glo(:,:)    !< global T mask (nn_nx, nn_ny), 1 ocean 0 land
      integer :: ierr, jr, idims(2), ji, jj, iocean, i0, j0, ini, inj, jk, itx, ity
      character(len=lc) :: cl
      idims = [jpni, jpnj]
      if (jpni <= 0 .and. jpnj <= 0) then
         idims = 0
         call MPI_Dims_create(nsize, 2, idims, ierr)
         jpni = idims(1) ; jpnj = idims(2)
      else if (jpni <= 0) then
         jpni = nsize / max(jpnj, 1)
      else if (jpnj <= 0) then
         jpnj = nsize / max(jpni, 1)
      end if
      if (jpni <= 0 .or. jpnj <= 0) then
         write(cl, '(a,i0,a,i0,a,i0,a)') '&namdom: jpni*jpnj = ', jpni, '*', jpnj, ' does not match the ', nsize, ' MPI ranks'
         call ctl_stop(trim(cl))
      end if
      ! tiles with ocean (every tile without ln_landdom), numbered i fastest
      allocate(nranktile(0:jpni-1, 0:jpnj-1))
      iocean = 0
      do jj = 0, jpnj - 1
         do ji = 0, jpni - 1
            call tile_dims(ji, jj, i0, j0, ini, inj)
            if (ln_landdom .and. ini > 0 .and. inj > 0) then
               if (all(pmask_glo(i0+1:i0+ini, j0+1:j0+inj) < 0.5_wp)) then
                  nranktile(ji,jj) = -1
                  cycle
               end if
            end if
            nranktile(ji,jj) = iocean
            iocean = iocean + 1
         end do
      end do
      nremoved = jpni * jpnj - iocean
      if (ln_landdom) then
         if (iocean /= nsize) then
            write(cl, '(a,i0,a,i0,a,i0,a,i0,a,i0,a)') '&namdom: ln_landdom: the ', jpni, ' x ', jpnj, ' layout has ', &
               & iocean, ' tile(s) with ocean (', nremoved, ' land-only removed) but the job runs on ', nsize, &
               & ' MPI ranks: run on as many ranks as tiles with ocean'
            call ctl_stop(trim(cl))
         end if
      else if (jpni * jpnj /= nsize) then
         write(cl, '(a,i0,a,i0,a,i0,a)') '&namdom: jpni*jpnj = ', jpni, '*', jpnj, ' does not match the ', nsize, ' MPI ranks'
         call ctl_stop(trim(cl))
      end if
      allocate(nimppt(0:nsize-1), njmppt(0:nsize-1), nit(0:nsize-1), njt(0:nsize-1))
      do jr = 0, nsize - 1
         call mpp_dims(jr, nimppt(jr), njmppt(jr), nit(jr), njt(jr))
      end do
      ipi = -1 ; ipj = -1
      do jj = 0, jpnj - 1
         do ji = 0, jpni - 1
            if (nranktile(ji,jj) == nrank) then
               ipi = ji ; ipj = jj
            end if
         end do
      end do
      nimpp = nimppt(nrank) ; njmpp = njmppt(nrank) ; ni = nit(nrank) ; nj = njt(nrank)
      ! every tile of the layout, removed or not, must be as wide as the halo (the same check with or without)
      call tile_dims(jpni - 1, jpnj - 1, i0, j0, ini, inj)
      if (ini < nn_hls .or. inj < nn_hls) then
         write(cl, '(a,i0,a,i0,a,i0,a,i0,a,i0)') '&namdom: tiles too small: ', nn_nx, 'x', nn_ny, ' on ', jpni, 'x', jpnj, &
            & ' ranks gives tiles narrower than the halo width ', nn_hls
         call ctl_stop(trim(cl))
      end if
      nowe = tile_rank(ipi - 1, ipj) ; noea = tile_rank(ipi + 1, ipj)
      noso = tile_rank(ipi, ipj - 1) ; nono = tile_rank(ipi, ipj + 1)
      ! halo corners: in the full layout corner k comes through the north/south neighbour's east-west halo;
      ! when that neighbour is removed (and the diagonal tile is not), it comes directly from the diagonal tile.
      ! Symmetrically, my corner block goes directly to the diagonal tile when my east/west neighbour towards
      ! it is removed (that neighbour would have relayed it).
      do jk = 1, 4
         itx = ipi + jpdx(jk) ; ity = ipj + jpdy(jk)
         if (tile_rank(itx, ity) == MPI_PROC_NULL) cycle
         if (tile_rank(ipi, ity) == MPI_PROC_NULL) idgr(jk) = tile_rank(itx, ity)
         if (tile_rank(itx, ipj) == MPI_PROC_NULL) idgs(jk) = tile_rank(itx, ity)
      end do
      lldiag = any(idgr /= MPI_PROC_NULL) .or. any(idgs /= MPI_PROC_NULL)
      if (lwp .and. ln_landdom) call mpp_print_layout()
   contains
      !> Rank of tile (ki,kj), MPI_PROC_NULL outside the layout or for a removed tile.
      integer function tile_rank(ki, kj)
         integer, intent(in) :: ki, kj          !< tile coordinates (0-based)
         tile_rank = MPI_PROC_NULL
         if (ki < 0 .or. ki >= jpni .or. kj < 0 .or. kj >= jpnj) return
         if (nranktile(ki,kj) >= 0) tile_rank = nranktile(ki,kj)
      end function tile_rank
   end subroutine mpp_decomp

   !> Print the layout (rank 0): which tiles hold ocean (their rank) and which were removed.
   subroutine mpp_print_layout()
      integer :: ji, jj
      character(len=8) :: cl
      write(*, '(a,i0,a,i0,a,i0,a,i0,a)') ' mpp: ln_landdom: ', jpni * jpnj - nremoved, ' of the ', jpni, ' x ', jpnj, &
         & ' tiles hold ocean, ', nremoved, ' land-only tile(s) removed'
      if (nremoved > 0) then
         write(*, '(a)', advance='no') ' mpp: removed tiles (i,j), 0-based:'
         do jj = 0, jpnj - 1
            do ji = 0, jpni - 1
               if (nranktile(ji,jj) < 0) write(*, '(a,i0,a,i0,a)', advance='no') ' (', ji, ',', jj, ')'
            end do
         end do
         write(*, '(a)') ''
      end if
      write(*, '(a)') ' mpp: tile map, north row first (rank of each tile, -- removed):'
      do jj = jpnj - 1, 0, -1
         write(*, '(a)', advance='no') '     '
         do ji = 0, jpni - 1
            if (nranktile(ji,jj) < 0) then
               cl = '   --'
            else
               write(cl, '(i5)') nranktile(ji,jj)
            end if
            write(*, '(a)', advance='no') cl(1:5)
         end do
         write(*, '(a)') ''
      end do
   end subroutine mpp_print_layout

   !> Tile of rank kr: 0-based offsets and interior extents (uneven splits: the first ranks get one more point).
   subroutine mpp_dims(kr, ki0, kj0, kni, knj)
      integer, intent(in)  :: kr                 !< rank (0-based)
      integer, intent(out) :: ki0, kj0           !< 0-based global offset of the first interior point
      integer, intent(out) :: kni, knj           !< interior extent
      integer :: ii, ij
      ki0 = 0 ; kj0 = 0 ; kni = 0 ; knj = 0
      do ij = 0, jpnj - 1
         do ii = 0, jpni - 1
            if (nranktile(ii,ij) == kr) call tile_dims(ii, ij, ki0, kj0, kni, knj)
         end do
      end do
   end subroutine mpp_dims

   !> Tile (ki,kj) of the jpni x jpnj layout: 0-based offsets and interior extents.
   pure subroutine tile_dims(ki, kj, ki0, kj0, kni, knj)
      integer, intent(in)  :: ki, kj             !< tile coordinates (0-based)
      integer, intent(out) :: ki0, kj0           !< 0-based global offset of the first interior point
      integer, intent(out) :: kni, knj           !< interior extent
      call split1d(nn_nx, jpni, ki, ki0, kni)
      call split1d(nn_ny, jpnj, kj, kj0, knj)
   contains
      !> Split kn points into kp parts, the first mod(kn,kp) one point longer.
      pure subroutine split1d(kn, kp, kk, k0, kl)
         integer, intent(in)  :: kn             !< number of points
         integer, intent(in)  :: kp             !< number of parts
         integer, intent(in)  :: kk             !< part index (0-based)
         integer, intent(out) :: k0             !< 0-based offset of the part
         integer, intent(out) :: kl             !< length of the part
         integer :: ib, ir
         ib = kn / kp ; ir = mod(kn, kp)
         kl = ib + merge(1, 0, kk < ir)
         k0 = kk * ib + min(kk, ir)
      end subroutine split1d
   end subroutine tile_dims

   !> Fill the halos of a stack of fields from the neighbouring tiles (closed basin: no periodicity).
   subroutine lbc_lnk(pf)
      real(wp), intent(inout) :: pf(1-nn_hls:, 1-nn_hls:, :)   !< fields (ni+2h, nj+2h, nf); interior is read, halo written
      integer :: inf, isz, ireq(4), ierr, jf, jj, ji, ic
      integer, parameter :: h = nn_hls
      if (nsize == 1) return
      inf = size(pf, 3)
      isz = max(h * nj, h * (ni + 2*h)) * inf
      if (.not. allocated(sbufw) .or. nlbc_cap < isz) then
         if (allocated(sbufw)) deallocate(sbufw, sbufe, rbufw, rbufe, sbufs, sbufn, rbufs, rbufn)
         allocate(sbufw(isz), sbufe(isz), rbufw(isz), rbufe(isz), sbufs(isz), sbufn(isz), rbufs(isz), rbufn(isz))
         nlbc_cap = isz
      end if
      ! --- east-west, interior rows only
      isz = h * nj * inf
      call MPI_Irecv(rbufw, isz, MPI_DOUBLE_PRECISION, nowe, 1, mpi_comm_oce, ireq(1), ierr)
      call MPI_Irecv(rbufe, isz, MPI_DOUBLE_PRECISION, noea, 2, mpi_comm_oce, ireq(2), ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, nj ; do ji = 1, h
         ic = ic + 1
         sbufw(ic) = pf(ji, jj, jf)
         sbufe(ic) = pf(ni-h+ji, jj, jf)
      end do ; end do ; end do
      call MPI_Isend(sbufe, isz, MPI_DOUBLE_PRECISION, noea, 1, mpi_comm_oce, ireq(3), ierr)
      call MPI_Isend(sbufw, isz, MPI_DOUBLE_PRECISION, nowe, 2, mpi_comm_oce, ireq(4), ierr)
      call MPI_Waitall(4, ireq, MPI_STATUSES_IGNORE, ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, nj ; do ji = 1, h
         ic = ic + 1
         if (nowe /= MPI_PROC_NULL) pf(ji-h, jj, jf) = rbufw(ic)
         if (noea /= MPI_PROC_NULL) pf(ni+ji, jj, jf) = rbufe(ic)
      end do ; end do ; end do
      ! --- north-south, full rows including the east-west halos (fills the corners)
      isz = h * (ni + 2*h) * inf
      call MPI_Irecv(rbufs, isz, MPI_DOUBLE_PRECISION, noso, 3, mpi_comm_oce, ireq(1), ierr)
      call MPI_Irecv(rbufn, isz, MPI_DOUBLE_PRECISION, nono, 4, mpi_comm_oce, ireq(2), ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, h ; do ji = 1-h, ni+h
         ic = ic + 1
         sbufs(ic) = pf(ji, jj, jf)
         sbufn(ic) = pf(ji, nj-h+jj, jf)
      end do ; end do ; end do
      call MPI_Isend(sbufn, isz, MPI_DOUBLE_PRECISION, nono, 3, mpi_comm_oce, ireq(3), ierr)
      call MPI_Isend(sbufs, isz, MPI_DOUBLE_PRECISION, noso, 4, mpi_comm_oce, ireq(4), ierr)
      call MPI_Waitall(4, ireq, MPI_STATUSES_IGNORE, ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, h ; do ji = 1-h, ni+h
         ic = ic + 1
         if (noso /= MPI_PROC_NULL) pf(ji, jj-h, jf) = rbufs(ic)
         if (nono /= MPI_PROC_NULL) pf(ji, nj+jj, jf) = rbufn(ic)
      end do ; end do ; end do
      if (lldiag) call lbc_corners(pf)
   end subroutine lbc_lnk

   !> Halo corners that a removed tile would have relayed: exchanged directly with the diagonal tile.
   subroutine lbc_corners(pf)
      real(wp), intent(inout) :: pf(1-nn_hls:, 1-nn_hls:, :)   !< fields; the corners of idgr are written
      integer, parameter :: h = nn_hls
      integer :: inf, isz, ireq(8), ierr, jk, jf, jj, ji, ic, ii0, ij0
      inf = size(pf, 3)
      isz = h * h * inf
      if (allocated(cbufs)) then
         if (size(cbufs, 1) < isz) deallocate(cbufs, cbufr)
      end if
      if (.not. allocated(cbufs)) allocate(cbufs(isz, 4), cbufr(isz, 4))
      ! message tag: 10 + the corner it leaves from (the receiver's opposite corner)
      do jk = 1, 4
         call MPI_Irecv(cbufr(:,jk), isz, MPI_DOUBLE_PRECISION, idgr(jk), 10 + 5 - jk, mpi_comm_oce, ireq(jk), ierr)
      end do
      do jk = 1, 4
         ii0 = merge(0, ni - h, jpdx(jk) < 0) ; ij0 = merge(0, nj - h, jpdy(jk) < 0)   ! my interior corner block
         ic = 0
         if (idgs(jk) /= MPI_PROC_NULL) then
            do jf = 1, inf ; do jj = 1, h ; do ji = 1, h
               ic = ic + 1
               cbufs(ic,jk) = pf(ii0+ji, ij0+jj, jf)
            end do ; end do ; end do
         end if
         call MPI_Isend(cbufs(:,jk), isz, MPI_DOUBLE_PRECISION, idgs(jk), 10 + jk, mpi_comm_oce, ireq(4+jk), ierr)
      end do
      call MPI_Waitall(8, ireq, MPI_STATUSES_IGNORE, ierr)
      do jk = 1, 4
         if (idgr(jk) == MPI_PROC_NULL) cycle
         ii0 = merge(-h, ni, jpdx(jk) < 0) ; ij0 = merge(-h, nj, jpdy(jk) < 0)           ! my halo corner block
         ic = 0
         do jf = 1, inf ; do jj = 1, h ; do ji = 1, h
            ic = ic + 1
            pf(ii0+ji, ij0+jj, jf) = cbufr(ic,jk)
         end do ; end do ; end do
      end do
   end subroutine lbc_corners

   !> Halo exchange of a single 2-D field.
   subroutine lbc_lnk_2d(pf)
      real(wp), intent(inout), target, contiguous :: pf(1-nn_hls:, 1-nn_hls:)   !< field (ni+2h, nj+2h)
      real(wp), pointer :: zp(:,:,:)
      zp(1-nn_hls:ni+nn_hls, 1-nn_hls:nj+nn_hls, 1:1) => pf
      call lbc_lnk(zp)
   end subroutine lbc_lnk_2d

   !> Gather the interior of a local 2-D field into a global (nn_nx, nn_ny) array on rank 0.
   subroutine mpp_gather(pin, pglo)
      real(wp), intent(in)  :: pin(1-nn_hls:, 1-nn_hls:)   !< local field with halos
      real(wp), intent(out) :: pglo(:,:)                   !< global field (nn_nx, nn_ny), defined on rank 0 only
      real(wp), allocatable :: zs(:), zr(:)
      integer, allocatable :: icnt(:), idsp(:)
      integer :: ierr, jr, ji, jj, ic
      if (nsize == 1) then
         if (nremoved > 0) pglo = 0._wp                   ! removed tiles are land
         pglo(nimpp+1:nimpp+ni, njmpp+1:njmpp+nj) = pin(1:ni, 1:nj)
         return
      end if
      allocate(zs(ni*nj), icnt(0:nsize-1), idsp(0:nsize-1))
      zs = reshape(pin(1:ni, 1:nj), [ni*nj])
      icnt = nit * njt
      idsp(0) = 0
      do jr = 1, nsize - 1
         idsp(jr) = idsp(jr-1) + icnt(jr-1)
      end do
      allocate(zr(merge(nn_nx*nn_ny, 1, lwp)))
      call MPI_Gatherv(zs, ni*nj, MPI_DOUBLE_PRECISION, zr, icnt, idsp, MPI_DOUBLE_PRECISION, 0, mpi_comm_oce, ierr)
      if (lwp) then
         if (nremoved > 0) pglo = 0._wp                   ! removed tiles are land
         do jr = 0, nsize - 1
            ic = idsp(jr)
            do jj = 1, njt(jr) ; do ji = 1, nit(jr)
               ic = ic + 1
               pglo(nimppt(jr)+ji, njmppt(jr)+jj) = zr(ic)
            end do ; end do
         end do
      end if
   end subroutine mpp_gather

   !> Global maximum of a vector (element-wise, order-independent hence decomposition-independent).
   subroutine mpp_max(pv)
      real(wp), intent(inout) :: pv(:)          !< local values in, global maxima out
      integer :: ierr
      if (nsize > 1) call MPI_Allreduce(MPI_IN_PLACE, pv, size(pv), MPI_DOUBLE_PRECISION, MPI_MAX, mpi_comm_oce, ierr)
   end subroutine mpp_max

   !> Global sum of an integer vector (exact).
   subroutine mpp_sum_int(kv)
      integer, intent(inout) :: kv(:)           !< local values in, global sums out
      integer :: ierr
      if (nsize > 1) call MPI_Allreduce(MPI_IN_PLACE, kv, size(kv), MPI_INTEGER, MPI_SUM, mpi_comm_oce, ierr)
   end subroutine mpp_sum_int

   !> Barrier on the model communicator.
   subroutine mpp_barrier()
      integer :: ierr
      if (nsize > 1) call MPI_Barrier(mpi_comm_oce, ierr)
   end subroutine mpp_barrier

   !> Stop the run with a message. Collective by default (every rank calls it, rank 0 prints, exit code 1);
   !! with ld_local=.true. only the calling rank knows, prints with its rank, and the whole job is aborted.
   subroutine ctl_stop(cd_msg, ld_local)
      character(len=*), intent(in) :: cd_msg    !< what went wrong, naming the input or the field at fault
      logical, intent(in), optional :: ld_local !< only this rank detected the error
      logical :: llloc
      integer :: ierr
      logical :: llinit
      llloc = .false. ; if (present(ld_local)) llloc = ld_local
      if (lwp .or. llloc) then
         write(*, '(a)') ''
         write(*, '(a,i0,a)') ' ===>>> : E R R O R  (gyre rank ', nrank, ')'
         write(*, '(a)') '          '//trim(cd_msg)
         write(0, '(a,i0,a)') 'gyre: ERROR (rank ', nrank, '): '//trim(cd_msg)
         flush(6) ; flush(0)
      end if
      if (associated(abort_hook)) call abort_hook(cd_msg)
      call MPI_Initialized(llinit, ierr)
      if (llinit) then
         if (llloc) then
            call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
         else
            call MPI_Barrier(mpi_comm_oce, ierr)
            call MPI_Finalize(ierr)
         end if
      end if
      stop 1
   end subroutine ctl_stop

   !> Print a warning (rank 0, or the calling rank with ld_local).
   subroutine ctl_warn(cd_msg, ld_local)
      character(len=*), intent(in) :: cd_msg    !< the warning
      logical, intent(in), optional :: ld_local !< print from this rank whatever its number
      logical :: llloc
      llloc = .false. ; if (present(ld_local)) llloc = ld_local
      if (lwp .or. llloc) then
         write(*, '(a,i0,a)') ' ===>>> : W A R N I N G  (gyre rank ', nrank, ')'
         write(*, '(a)') '          '//trim(cd_msg)
         flush(6)
      end if
   end subroutine ctl_warn

end module gyre_mpp
